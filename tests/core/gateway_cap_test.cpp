// Per-gateway reservations: the cap holds, others pass, waiting devices come
// back in order once there is room.
#include "core/dispatch/gateway_cap.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace fleetcast;

namespace {
pkdk_view behind(const std::string& gw, const std::string& dk) {
  return {"p", dk, "g", gw};
}
}  // namespace

TEST_CASE("no cap, or no gateway: every device goes at once") {
  gateway_cap none(0);
  for (int i = 0; i < 100; ++i) CHECK(none.admit(i, {"p", "d", "g", "A"}, false));
  gateway_cap cap(1);
  for (int i = 0; i < 100; ++i) CHECK(cap.admit(i, {"p", "d", "", ""}, false));
  CHECK(cap.waiting() == 0);
}

TEST_CASE("the cap holds per gateway, devices behind other gateways pass") {
  gateway_cap cap(2);
  const std::string a = "A", b = "B";
  CHECK(cap.admit(0, behind(a, "a0"), false));
  CHECK(cap.admit(1, behind(a, "a1"), false));
  CHECK(!cap.admit(2, behind(a, "a2"), true));  // A is full: a2 waits
  CHECK(!cap.admit(3, behind(a, "a3"), false));
  CHECK(cap.admit(4, behind(b, "b0"), false));  // B is not
  CHECK(cap.waiting() == 2);
  gateway_cap::waiting_device w;
  CHECK(!cap.next_ready(w));  // no room yet
  cap.release(behind(a, "a0"));
  REQUIRE(cap.next_ready(w));
  CHECK(w.index == 2);  // first come, first served
  CHECK(w.device.device_key == "a2");
  CHECK(w.uncertain);
  CHECK(!cap.next_ready(w));                     // A is full again
  CHECK(!cap.admit(5, behind(a, "a5"), false));  // and newcomers queue behind the waiting ones
  cap.release(behind(a, "a1"));
  REQUIRE(cap.next_ready(w));
  CHECK(w.index == 3);
  CHECK(cap.waiting() == 1);
  std::vector<std::uint64_t> drained;
  cap.drain([&](const gateway_cap::waiting_device& x) { drained.push_back(x.index); });
  CHECK(drained == std::vector<std::uint64_t>{5});
  CHECK(cap.waiting() == 0);
}

TEST_CASE("waiting is bounded") {
  gateway_cap cap(1, 3);
  CHECK(cap.admit(0, behind("A", "0"), false));
  for (int i = 1; i <= 3; ++i) CHECK(!cap.admit(i, behind("A", std::to_string(i)), false));
  CHECK(cap.full());
}
