#include "core/daemon/admin_access.hpp"

#include <algorithm>
#include <cctype>

namespace fleetcast {

namespace {

bool ipv4_literal(std::string_view s) noexcept {
  int parts = 0;
  while (true) {
    std::size_t n = 0;
    unsigned value = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9' && n < 3) value = value * 10 + (s[n++] - '0');
    if (n == 0 || value > 255) return false;
    s.remove_prefix(n);
    ++parts;
    if (s.empty()) return parts == 4;
    if (s.front() != '.' || parts == 4) return false;
    s.remove_prefix(1);
  }
}

bool ipv6_literal(std::string_view s) noexcept {  // inside the brackets
  if (s.size() < 2 || s.find(':') == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
  });
}

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_port(std::string_view p) noexcept {
  return !p.empty() && p.size() <= 5 &&
         std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool admin_changes(std::string_view method) noexcept {
  return method != "GET" && method != "HEAD";
}

bool admin_open_target(std::string_view target) noexcept {
  target = target.substr(0, target.find('?'));
  return target == "/healthz" || target == "/readyz" || target == "/metrics";
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool admin_trusted_host(std::string_view host, const std::vector<std::string>* hosts) noexcept {
  std::string_view name = host;
  if (name.starts_with('[')) {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    const auto rest = name.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && valid_port(rest.substr(1)))) return false;
    return ipv6_literal(name.substr(1, close - 1));
  }
  if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    if (!valid_port(name.substr(colon + 1))) return false;
    name = name.substr(0, colon);
  }
  if (name.empty()) return false;
  if (ipv4_literal(name) || equal_ignoring_case(name, "localhost")) return true;
  if (hosts)
    for (const auto& h : *hosts)
      if (equal_ignoring_case(name, h)) return true;
  return false;
}

bool admin_cross_site(std::string_view origin, std::string_view host) noexcept {
  if (origin.empty()) return false;
  constexpr std::string_view scheme = "http://";
  return !origin.starts_with(scheme) || origin.substr(scheme.size()) != host;
}

admin_verdict admin_access(const admin_client& c, const admin_policy& p) noexcept {
  constexpr std::string_view bearer = "Bearer ";
  const bool has_token = !p.token.empty() && c.authorization.starts_with(bearer) &&
                         constant_time_equal(c.authorization.substr(bearer.size()), p.token);
  const bool change = admin_changes(c.method);
  if (!change && admin_open_target(c.target)) return admin_verdict::allowed;
  if (has_token) return admin_verdict::allowed;  // a page cannot know it
  if (change && !p.token.empty()) return admin_verdict::unauthorized;
  if (change && !c.on_loopback) return admin_verdict::remote;
  if (!admin_trusted_host(c.host, p.hosts)) return admin_verdict::untrusted_host;
  if (!change) return admin_verdict::allowed;
  if (admin_cross_site(c.origin, c.host)) return admin_verdict::cross_site;
  if (!c.has_admin_header) return admin_verdict::no_header;
  return admin_verdict::allowed;
}

std::string_view admin_refusal(admin_verdict v) noexcept {
  switch (v) {
    case admin_verdict::allowed:
      return "";
    case admin_verdict::unauthorized:
      return "a change needs Authorization: Bearer <the token in admin_token_file>\n";
    case admin_verdict::remote:
      return "changes are taken from loopback clients only; set admin_token_file to take them "
             "from elsewhere with a bearer token\n";
    case admin_verdict::untrusted_host:
      return "the Host header names a host this port does not answer job data to (a page may "
             "have chosen it): use an IP address or localhost, list the name in admin_hosts, or "
             "send the admin token\n";
    case admin_verdict::cross_site:
      return "a change from another site's page is refused (Origin)\n";
    case admin_verdict::no_header:
      return "a change without the admin token must carry the header X-Fleetcast-Admin: 1 "
             "(a web page cannot send it)\n";
  }
  return "refused\n";
}

}  // namespace fleetcast
