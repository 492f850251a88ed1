// proxy: reaching the endpoint through an HTTP proxy with CONNECT, the
// decisions only (no socket): which proxy serves an endpoint (the job's
// `proxy` field, else the environment by curl's rules, NO_PROXY applied),
// the CONNECT request, and what the proxy's answer means.
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

struct proxy_url {
  std::string host;  // without brackets for an IPv6 literal
  std::uint16_t port = 1080;
  std::string user, password;  // percent-decoded; empty: no Proxy-Authorization
  // "host:port" for messages: never the user or the password.
  std::string display() const;
};

// "http://[user[:password]@]host[:port][/]" (port default 1080, as curl's).
// The problem, or nullopt; an https:// proxy (TLS to the proxy) is refused
// as not supported.
std::optional<std::string> parse_proxy_url(std::string_view text, proxy_url& out);

// NO_PROXY by curl's rules: comma-separated entries, spaces ignored, "*"
// alone matches every host; a name matches itself and its subdomains (a
// leading dot is optional: ".example.com" and "example.com" alike); an IP
// address matches itself, an IPv4 CIDR block ("10.0.0.0/8") its addresses.
// Case-insensitive.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host);

// The proxy variables as read from the environment (the caller reads them).
struct proxy_environment {
  std::string https_proxy;  // https_proxy, else HTTPS_PROXY
  std::string http_proxy;   // http_proxy, else HTTP_PROXY (not under CGI: REQUEST_METHOD set)
  std::string no_proxy;     // no_proxy, else NO_PROXY
  // Which variables they came from, for messages.
  std::string https_source = "HTTPS_PROXY", http_source = "HTTP_PROXY";
};

struct proxy_choice {
  std::optional<proxy_url> proxy;  // absent: connect directly
  std::string why;                 // "auth", "HTTPS_PROXY", ... or why direct
};

// The job's `proxy` ("direct": none, whatever the environment says) wins;
// else HTTPS_PROXY for an https:// endpoint, HTTP_PROXY for http://, unless
// NO_PROXY matches the endpoint's host. `error` names a malformed URL and
// where it came from.
proxy_choice choose_proxy(const endpoint_config& endpoint,
                          const std::optional<std::string>& job_proxy, const proxy_environment& env,
                          std::string& error);

// "CONNECT host:port HTTP/1.1" with Host and, with a user, Proxy-Authorization.
std::string connect_request(const proxy_url& proxy, std::string_view host, std::uint16_t port);

// What a proxy's answer to CONNECT says: "" for 2xx (the tunnel is open),
// else one line naming the proxy, the status and what to check.
std::string tunnel_refusal(const proxy_url& proxy, std::string_view target, int status,
                           std::string_view reason);

std::string base64(std::string_view bytes);

}  // namespace fleetcast
