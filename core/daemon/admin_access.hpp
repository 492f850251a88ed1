// admin_access: who may do what on the daemon's admin port. Reading
// (/metrics, /healthz, /readyz, /jobs, the status page) is open on any
// address, as Prometheus and kubelet expect; a request that changes
// something (cancel, resume, retry-failed) needs the bearer token of
// admin_token_file, or, when no token is configured, a loopback client.
#pragma once

#include <string_view>

namespace fleetcast {

enum class admin_verdict {
  allowed,
  unauthorized,  // 401: a token is configured; this request lacks it or has another
  forbidden,     // 403: no token is configured and the client is not on loopback
};

// GET and HEAD read; every other method changes something.
bool admin_changes(std::string_view method) noexcept;

// `authorization`: the request's Authorization header ("" when absent);
// `token`: admin_token_file's content ("" when none is configured). The
// token is compared in constant time.
admin_verdict admin_access(std::string_view method, bool client_on_loopback,
                           std::string_view authorization, std::string_view token) noexcept;

// Whether a request comes from a page of another site: a browser sends
// Origin with a cross-site POST, which a page anywhere on the web can make to
// a loopback port (no preflight for a simple POST). A change request whose
// Origin is not this server's own ("http://" + its Host) is refused, so the
// status page, or any other, cannot be used to cancel jobs behind the
// operator's back. No Origin (curl, scripts) is not cross-site.
bool admin_cross_site(std::string_view origin, std::string_view host) noexcept;

// Equal bytes, in time that depends on the lengths only.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace fleetcast
