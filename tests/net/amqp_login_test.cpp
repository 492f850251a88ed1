// The subscription's SASL PLAIN login: what the receiver makes, the
// emulator's check accepts; every documented rule refused when broken.
#include "net/acks/amqp_login.hpp"

#include <doctest/doctest.h>

using namespace fleetcast::net;

TEST_CASE("the AccessKey login as documented, and the check of it") {
  const std::int64_t now = 1'700'000'000'000;
  const auto l = make_amqp_login("AK1", "secret", now);
  CHECK(l.username ==
        "ver=1&auth_mode=accessKey&sign_method=sha256&access_key=AK1&timestamp=1700000000000");
  CHECK(l.password.size() == 64);
  CHECK(l.password.find_first_not_of("0123456789abcdef") == std::string::npos);
  // sha256(username + "secret"), as Python's hashlib computes it.
  CHECK(l.password == "a81480e9c4a033929e66b8e2610a1d97d34f9c3105bf2b147b39846becc772f3");
  CHECK(make_amqp_login("AK1", "secret", now + 1).password != l.password);
  CHECK(check_amqp_login(l.username, l.password, "AK1", "secret", now).empty());
  CHECK(check_amqp_login(l.username, l.password, "AK1", "secret", now + 9 * 60 * 1000).empty());
  CHECK(check_amqp_login(l.username, l.password, "AK1", "secret", now + 11 * 60 * 1000)
            .find("10 minutes") != std::string::npos);
  CHECK(check_amqp_login(l.username, l.password, "AK1", "other", now).find("SHA-256") !=
        std::string::npos);
  CHECK(check_amqp_login(l.username, l.password, "AK2", "secret", now).find("access_key") !=
        std::string::npos);
  const auto md5 = l.username.substr(0, l.username.find("sha256")) + "md5" +
                   l.username.substr(l.username.find("sha256") + 6);
  CHECK(check_amqp_login(md5, l.password, "AK1", "secret", now).find("sign_method") !=
        std::string::npos);
  CHECK(check_amqp_login(l.username + "&x=1", l.password, "AK1", "secret", now)
            .find("unknown username pair") != std::string::npos);
  // The password never appears in a refusal.
  CHECK(check_amqp_login(l.username, l.password, "AK1", "other", now).find(l.password) ==
        std::string::npos);
}
