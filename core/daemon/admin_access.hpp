// admin_access: who may do what on the daemon's admin port.
//
// The threat: a web page in the operator's browser. It can send a simple
// POST to any address, loopback included (no preflight), and through DNS
// rebinding it can even read answers, with Host and Origin both a name it
// chose. So:
// - Health and metrics (/healthz, /readyz, /metrics) are open on any
//   address, as kubelet and Prometheus expect; they hold no job data.
// - Job data (/jobs, a job's page, the status page) is served to a client
//   with the admin token, or to one whose Host header a page cannot have
//   chosen: an IP literal, "localhost", or a name in admin_hosts.
// - A change (any method but GET and HEAD) needs the admin token when one
//   is configured. Without one it is taken from loopback clients only, and
//   only when, besides a trusted Host, it carries the header
//   X-Fleetcast-Admin (a page cannot send a custom header to another site
//   without a preflight, which this port never grants) and no Origin of
//   another site.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

enum class admin_verdict {
  allowed,
  unauthorized,    // 401: a token is configured; this request lacks it or has another
  remote,          // 403: no token is configured and the client is not on loopback
  untrusted_host,  // 403: job data or a change, and the Host header is a name a page may choose
  cross_site,      // 403: a change whose Origin is another site
  no_header,       // 403: a change without a token and without X-Fleetcast-Admin
};

// The header a change without a token must carry.
inline constexpr std::string_view admin_header = "X-Fleetcast-Admin";

struct admin_client {
  std::string_view method, target;
  bool on_loopback = false;
  std::string_view authorization;  // the Authorization header ("" when absent)
  std::string_view origin;         // the Origin header ("" when absent)
  std::string_view host;           // the Host header
  bool has_admin_header = false;   // X-Fleetcast-Admin was sent
};

struct admin_policy {
  std::string_view token;                           // admin_token_file's content ("" when none)
  const std::vector<std::string>* hosts = nullptr;  // admin_hosts: names trusted besides literals
};

admin_verdict admin_access(const admin_client& client, const admin_policy& policy) noexcept;

// What the verdict says to the client (a 401 or 403's body).
std::string_view admin_refusal(admin_verdict v) noexcept;

// GET and HEAD read; every other method changes something.
bool admin_changes(std::string_view method) noexcept;
// /healthz, /readyz and /metrics: open to any client.
bool admin_open_target(std::string_view target) noexcept;

// Whether a Host header ("name[:port]", "[v6]:port") is one a page cannot
// have chosen: an IP literal, "localhost", or one of `hosts` (any case).
bool admin_trusted_host(std::string_view host, const std::vector<std::string>* hosts) noexcept;

// Whether a request comes from a page of another site: its Origin is not
// "http://" + its Host. No Origin (curl, scripts) is not cross-site.
bool admin_cross_site(std::string_view origin, std::string_view host) noexcept;

// Equal bytes, in time that depends on the lengths only.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace fleetcast
