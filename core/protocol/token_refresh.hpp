// token_refresh: the platform's refresh endpoint for end-user tokens
// (api/SUBSCRIPTION.md): PUT /v2/enduser/enduserapi/refreshToken?refreshToken=R
// on the API's host answers a new access token (2 hours) and a new refresh
// token, with their expirationTime in seconds since the epoch. Pure: the
// request target, the answer read, a JWT's exp, and when to refresh.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

inline constexpr std::string_view refresh_token_path = "/v2/enduser/enduserapi/refreshToken";

// The request target (path prefix, then the path and the URL-encoded token).
std::string refresh_target(std::string_view path_prefix, std::string_view refresh_token);

struct refresh_answer {
  std::string access_token, refresh_token;  // as given ("Bearer ..." for the access token)
  std::int64_t access_expires_s = 0, refresh_expires_s = 0;  // 0 when not given
  std::optional<std::int64_t> code;                          // the body's code when it is not 200
  std::string error;  // why it is not a usable answer ("" when it is)
};
refresh_answer read_refresh_answer(int http_status, std::string_view body);

// The `exp` of a JWT access token ("Bearer " taken off), if it is one.
std::optional<std::int64_t> jwt_expiry_s(std::string_view token);
// Its `iat` (when it was issued, on the issuer's clock), if it has one.
std::optional<std::int64_t> jwt_issued_s(std::string_view token);

// An HTTP Date header (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") as
// seconds since the epoch; nullopt for anything else.
std::optional<std::int64_t> parse_http_date(std::string_view text);

// When to refresh a token valid until expires_s, obtained at obtained_s:
// a quarter of its life before the end, at most 5 minutes before.
std::int64_t refresh_due_s(std::int64_t obtained_s, std::int64_t expires_s) noexcept;

}  // namespace fleetcast
