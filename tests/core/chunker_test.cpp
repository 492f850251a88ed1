// Batches of at most N, streamed; splitting; buffer reuse.
#include "core/dispatch/chunker.hpp"
#include "core/input/device_hash.hpp"
#include "tests/alloc_counter.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace fleetcast;

namespace {
std::vector<std::string> keys(std::size_t n) {
  std::vector<std::string> k;
  for (std::size_t i = 0; i < n; ++i) k.push_back("dev" + std::to_string(i));
  return k;
}
}  // namespace

TEST_CASE("devices are chunked into batches of at most N, in order, each exactly once") {
  for (std::size_t n : {1u, 2u, 7u, 500u}) {
    for (std::size_t total : {0u, 1u, 6u, 7u, 8u, 1001u}) {
      CAPTURE(n);
      CAPTURE(total);
      const auto k = keys(total);
      chunker c(n);
      std::vector<std::size_t> sizes;
      std::vector<std::uint64_t> seen;
      batch b;
      auto drain = [&] {
        c.take(b);
        sizes.push_back(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) {
          CHECK(b.device(i).device_key == k[b.index(i)]);
          CHECK(b.device(i).product_key == "pk");
          seen.push_back(b.index(i));
        }
      };
      for (std::size_t i = 0; i < total; ++i) {
        if (c.add(i, {"pk", k[i], "", ""})) drain();
      }
      if (!c.empty()) drain();
      REQUIRE(seen.size() == total);
      for (std::size_t i = 0; i < total; ++i) CHECK(seen[i] == i);
      for (std::size_t s : sizes) CHECK((s >= 1 && s <= n));
      CHECK(sizes.size() == (total + n - 1) / n);
    }
  }
}

TEST_CASE("the limit can change between batches") {
  chunker c(4);
  batch b;
  for (int i = 0; i < 3; ++i) CHECK(!c.add(i, {"p", "d" + std::to_string(i), "", ""}));
  c.set_max_devices(2);  // e.g. after a 5312 answer
  CHECK(c.full());
  c.take(b);
  CHECK(b.size() == 3);
  CHECK(!c.add(3, {"p", "d3", "", ""}));
  CHECK(c.add(4, {"p", "d4", "", ""}));
  c.set_max_devices(0);  // clamped to 1
  CHECK(c.max_devices() == 1);
}

TEST_CASE("a batch's slices keep index, route, attempts and uncertainty") {
  batch b;
  for (int i = 0; i < 5; ++i) {
    b.add(100 + i, {"p", "d" + std::to_string(i), i % 2 ? "gp" : "", i % 2 ? "gd" : ""});
  }
  b.note_attempt();
  b.note_attempt();
  b.mark_uncertain();
  const batch first = b.slice(0, 2), second = b.slice(2, 5);
  REQUIRE(first.size() == 2);
  REQUIRE(second.size() == 3);
  for (std::size_t i = 0; i < 5; ++i) {
    const batch& half = i < 2 ? first : second;
    const std::size_t j = i < 2 ? i : i - 2;
    CHECK(half.index(j) == 100 + i);
    CHECK(half.device(j) == b.device(i));
    CHECK(half.attempts(j) == 2);
    CHECK(half.uncertain(j));
  }
  CHECK(first.slice(0, 1).size() == 1);
  CHECK(first.slice(1, 2).index(0) == 101);
}

TEST_CASE("a steady stream of batches reuses its buffers") {
  chunker c(100);
  batch b;
  const auto k = keys(1000);
  auto run = [&] {
    for (std::size_t i = 0; i < k.size(); ++i) {
      if (c.add(i, {"p1a2b3", k[i], "", ""})) c.take(b);
    }
  };
  run();  // warms both buffers
  test::counting_scope scope;
  run();
  CHECK(scope.allocations() == 0);
}

TEST_CASE("a batch keeps each device's identity hash through slicing") {
  batch b;
  for (int i = 0; i < 5; ++i) b.add(i, {"p", "d" + std::to_string(i), "", ""});
  b.add_hashed(5, {"p", "d5", "", ""}, 42);
  CHECK(b.fingerprint(0) == device_hash("p", "d0"));
  CHECK(b.fingerprint(5) == 42);  // a known hash is taken as given
  const batch tail = b.slice(3, 6);
  REQUIRE(tail.size() == 3);
  CHECK(tail.fingerprint(0) == device_hash("p", "d3"));
  CHECK(tail.fingerprint(2) == 42);
  const batch first = b.slice(0, 3), second = b.slice(3, 6);
  CHECK(first.fingerprint(2) == b.fingerprint(2));
  CHECK(second.fingerprint(2) == 42);
}
