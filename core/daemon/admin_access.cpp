#include "core/daemon/admin_access.hpp"

namespace fleetcast {

bool admin_changes(std::string_view method) noexcept {
  return method != "GET" && method != "HEAD";
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool admin_cross_site(std::string_view origin, std::string_view host) noexcept {
  if (origin.empty()) return false;
  constexpr std::string_view scheme = "http://";
  return !origin.starts_with(scheme) || origin.substr(scheme.size()) != host;
}

admin_verdict admin_access(std::string_view method, bool client_on_loopback,
                           std::string_view authorization, std::string_view token) noexcept {
  if (!admin_changes(method)) return admin_verdict::allowed;
  if (token.empty()) return client_on_loopback ? admin_verdict::allowed : admin_verdict::forbidden;
  constexpr std::string_view scheme = "Bearer ";
  if (!authorization.starts_with(scheme)) return admin_verdict::unauthorized;
  return constant_time_equal(authorization.substr(scheme.size()), token)
             ? admin_verdict::allowed
             : admin_verdict::unauthorized;
}

}  // namespace fleetcast
