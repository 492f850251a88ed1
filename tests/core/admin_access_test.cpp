// The admin port's rule: reading is open, changing needs the token or loopback.
#include "core/daemon/admin_access.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("reading is open on any address, changing needs the token, or loopback without one") {
  CHECK(admin_access("GET", false, "", "") == admin_verdict::allowed);
  CHECK(admin_access("HEAD", false, "", "tok") == admin_verdict::allowed);
  // No token configured: loopback clients only.
  CHECK(admin_access("POST", true, "", "") == admin_verdict::allowed);
  CHECK(admin_access("POST", false, "", "") == admin_verdict::forbidden);
  CHECK(admin_access("DELETE", false, "Bearer x", "") == admin_verdict::forbidden);
  // A token configured: it, from anywhere, loopback included.
  CHECK(admin_access("POST", false, "Bearer s3cret", "s3cret") == admin_verdict::allowed);
  CHECK(admin_access("POST", true, "", "s3cret") == admin_verdict::unauthorized);
  CHECK(admin_access("POST", false, "Bearer s3cre", "s3cret") == admin_verdict::unauthorized);
  CHECK(admin_access("POST", false, "Bearer s3cret2", "s3cret") == admin_verdict::unauthorized);
  CHECK(admin_access("POST", false, "Basic s3cret", "s3cret") == admin_verdict::unauthorized);
  CHECK(admin_access("POST", false, "s3cret", "s3cret") == admin_verdict::unauthorized);
  CHECK(constant_time_equal("", ""));
  CHECK_FALSE(constant_time_equal("a", "b"));
  CHECK_FALSE(constant_time_equal("ab", "a"));
}

TEST_CASE("admin port: a change from another site's page is refused, no Origin is not cross-site") {
  CHECK_FALSE(admin_cross_site("", "127.0.0.1:9464"));
  CHECK_FALSE(admin_cross_site("http://127.0.0.1:9464", "127.0.0.1:9464"));
  CHECK(admin_cross_site("http://127.0.0.1:9465", "127.0.0.1:9464"));
  CHECK(admin_cross_site("https://evil.example", "127.0.0.1:9464"));
  CHECK(admin_cross_site("null", "127.0.0.1:9464"));
  CHECK(admin_cross_site("http://127.0.0.1:9464.evil.example", "127.0.0.1:9464"));
}
