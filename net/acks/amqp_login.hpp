// amqp_login: the subscription's SASL PLAIN credentials (api/SUBSCRIPTION.md):
//   username: ver=1&auth_mode=accessKey&sign_method=sha256&access_key=<AccessKey>&timestamp=<ms>
//   password: lowercase hex SHA-256 of the username followed by the AccessSecret
// made anew for every connection; and the check the emulator makes of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fleetcast::net {

struct amqp_login {
  std::string username, password;
};

amqp_login make_amqp_login(std::string_view access_key, std::string_view access_secret,
                           std::int64_t now_ms);

// Tells credentials apart without keeping them: hex SHA-256 of the key, a
// newline and the secret (the daemon shares one subscription per set).
std::string credential_digest(std::string_view access_key, std::string_view access_secret);

// Empty when `username` and `password` are a valid login for the key and
// secret at now_ms (timestamp within 10 minutes); otherwise why not (never
// quoting the password).
std::string check_amqp_login(std::string_view username, std::string_view password,
                             std::string_view access_key, std::string_view access_secret,
                             std::int64_t now_ms);

}  // namespace fleetcast::net
