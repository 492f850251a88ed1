// The admin port's rule: health open, job data and changes only to clients
// a web page cannot impersonate (the token, or a trusted Host plus, for a
// change, loopback, X-Fleetcast-Admin and no foreign Origin).
#include "core/daemon/admin_access.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

namespace {

admin_client client(std::string_view method, std::string_view target, std::string_view host,
                    bool loopback = true) {
  admin_client c;
  c.method = method;
  c.target = target;
  c.host = host;
  c.on_loopback = loopback;
  return c;
}

}  // namespace

TEST_CASE("admin port: health and metrics are open to anyone, job data only to a trusted Host") {
  const admin_policy none{};
  for (auto target : {"/healthz", "/readyz", "/metrics"})
    CHECK(admin_access(client("GET", target, "evil.example", false), none) ==
          admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/jobs", "127.0.0.1:9464"), none) == admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/jobs", "10.1.2.3:9464", false), none) ==
        admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/", "[::1]:9464"), none) == admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/", "localhost:9464"), none) == admin_verdict::allowed);
  // A DNS-rebinding page: the attacker's name resolves to 127.0.0.1.
  CHECK(admin_access(client("GET", "/jobs", "rebind.evil.example:9464"), none) ==
        admin_verdict::untrusted_host);
  CHECK(admin_access(client("GET", "/", "127.0.0.1.nip.io:9464"), none) ==
        admin_verdict::untrusted_host);
  CHECK(admin_access(client("GET", "/jobs", ""), none) == admin_verdict::untrusted_host);
  // A configured name is trusted, in any case.
  const std::vector<std::string> hosts{"fleetcast.internal"};
  const admin_policy named{"", &hosts};
  CHECK(admin_access(client("GET", "/jobs", "Fleetcast.Internal:9464", false), named) ==
        admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/jobs", "other.internal:9464", false), named) ==
        admin_verdict::untrusted_host);
}

TEST_CASE(
    "admin port: a change without a token needs loopback, a trusted Host, the header, no foreign "
    "Origin") {
  const admin_policy none{};
  auto post = client("POST", "/jobs/j/cancel", "127.0.0.1:9464");
  CHECK(admin_access(post, none) == admin_verdict::no_header);  // a page's simple POST
  post.has_admin_header = true;
  CHECK(admin_access(post, none) == admin_verdict::allowed);
  auto remote = post;
  remote.on_loopback = false;
  CHECK(admin_access(remote, none) == admin_verdict::remote);
  // The rebinding page can send the header (same origin to the browser)
  // but not a Host it did not choose.
  auto rebinding = post;
  rebinding.host = "rebind.evil.example:9464";
  rebinding.origin = "http://rebind.evil.example:9464";
  CHECK(admin_access(rebinding, none) == admin_verdict::untrusted_host);
  auto cross = post;
  cross.origin = "https://evil.example";
  CHECK(admin_access(cross, none) == admin_verdict::cross_site);
  cross.origin = "null";
  CHECK(admin_access(cross, none) == admin_verdict::cross_site);
  auto own = post;
  own.origin = "http://127.0.0.1:9464";
  CHECK(admin_access(own, none) == admin_verdict::allowed);
}

TEST_CASE("admin port: with a token, it and only it makes changes, from anywhere") {
  const admin_policy token{"s3cret"};
  auto post = client("POST", "/jobs/j/cancel", "rebind.evil.example", false);
  post.authorization = "Bearer s3cret";
  CHECK(admin_access(post, token) == admin_verdict::allowed);
  for (auto wrong : {"", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"}) {
    auto p = post;
    p.authorization = wrong;
    p.on_loopback = true;
    p.host = "127.0.0.1";
    p.has_admin_header = true;
    CHECK(admin_access(p, token) == admin_verdict::unauthorized);
  }
  // Reading with the token from any Host; without it, a trusted Host still reads.
  auto get = client("GET", "/jobs", "rebind.evil.example", false);
  CHECK(admin_access(get, token) == admin_verdict::untrusted_host);
  get.authorization = "Bearer s3cret";
  CHECK(admin_access(get, token) == admin_verdict::allowed);
  CHECK(admin_access(client("GET", "/jobs", "127.0.0.1"), token) == admin_verdict::allowed);
  CHECK(constant_time_equal("", ""));
  CHECK_FALSE(constant_time_equal("a", "b"));
  CHECK_FALSE(constant_time_equal("ab", "a"));
}

TEST_CASE("admin port: Host literals are parsed strictly") {
  CHECK(admin_trusted_host("127.0.0.1", nullptr));
  CHECK(admin_trusted_host("192.168.0.10:80", nullptr));
  CHECK(admin_trusted_host("[::1]", nullptr));
  CHECK(admin_trusted_host("[fd00::1:2]:9464", nullptr));
  CHECK_FALSE(admin_trusted_host("256.0.0.1", nullptr));
  CHECK_FALSE(admin_trusted_host("127.0.0.1.evil", nullptr));
  CHECK_FALSE(admin_trusted_host("127.0.0", nullptr));
  CHECK_FALSE(admin_trusted_host("127.0.0.1:x", nullptr));
  CHECK_FALSE(admin_trusted_host("[::1]evil", nullptr));
  CHECK_FALSE(admin_trusted_host("[evil.example]", nullptr));
  CHECK_FALSE(admin_trusted_host("0x7f.0.0.1", nullptr));
  CHECK_FALSE(admin_cross_site("", "127.0.0.1:9464"));
  CHECK_FALSE(admin_cross_site("http://127.0.0.1:9464", "127.0.0.1:9464"));
  CHECK(admin_cross_site("http://127.0.0.1:9465", "127.0.0.1:9464"));
  CHECK(admin_cross_site("http://127.0.0.1:9464.evil.example", "127.0.0.1:9464"));
}
