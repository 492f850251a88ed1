// The rate limit a daemon's jobs share per account: never above the rate,
// fair among members that want more, wasting nothing others leave.
#include "core/daemon/fair_rate_gate.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <vector>

using namespace fleetcast;

namespace {
// Members with `connections` each re-reserving as soon as their go time
// comes; returns the grants per member over `seconds`.
std::vector<int> simulate(fair_rate_gate& gate, const std::vector<int>& connections, double seconds,
                          std::int64_t start_us = 0) {
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < connections.size(); ++i) ids.push_back(gate.join());
  std::multimap<std::int64_t, std::size_t> go;  // time -> member
  for (std::size_t i = 0; i < connections.size(); ++i) {
    for (int c = 0; c < connections[i]; ++c) go.emplace(gate.reserve(ids[i], start_us), i);
  }
  std::vector<int> grants(connections.size());
  const auto end = start_us + static_cast<std::int64_t>(seconds * 1e6);
  while (!go.empty() && go.begin()->first < end) {
    const auto [t, i] = *go.begin();
    go.erase(go.begin());
    ++grants[i];
    go.emplace(gate.reserve(ids[i], t), i);
  }
  for (auto id : ids) gate.leave(id);
  return grants;
}
}  // namespace

TEST_CASE("the shared rate: never above the rate, fair among backlogged members") {
  fair_rate_gate gate(100, 5);
  const auto alone = simulate(gate, {8}, 10);
  CHECK(alone[0] >= 995);  // the whole rate
  CHECK(alone[0] <= 1005);

  fair_rate_gate shared(100, 5);
  const auto two = simulate(shared, {8, 1}, 10);  // 8 connections against 1
  CHECK(two[0] + two[1] <= 1005);
  CHECK(two[0] + two[1] >= 990);
  CHECK(std::abs(two[0] - two[1]) <= 20);  // fair by member, not by connection

  fair_rate_gate three(60, 1);
  const auto t = simulate(three, {4, 2, 1}, 20);
  for (int g : t) CHECK(std::abs(g - 400) <= 15);
}

TEST_CASE("the shared rate: a member that asks for less leaves the rest to the others") {
  fair_rate_gate gate(100, 1);
  auto a = gate.join(), b = gate.join();
  // b sends one request a second; a takes whatever is free.
  int a_grants = 0, b_grants = 0;
  std::int64_t a_next = 0;
  for (std::int64_t now = 0; now < 10'000'000; now += 1000) {  // a 1 ms tick
    if (now % 1'000'000 == 0) {
      gate.reserve(b, now);
      ++b_grants;
    }
    if (now >= a_next) {
      a_next = gate.reserve(a, now);
      ++a_grants;
    }
  }
  CHECK(b_grants == 10);
  CHECK(a_grants >= 980);  // not capped at half
  CHECK(a_grants + b_grants <= 1002);
}

TEST_CASE("the shared rate: unlimited, and a new rate") {
  fair_rate_gate gate(0, 1);
  auto m = gate.join();
  CHECK(gate.reserve(m, 123) == 123);
  gate.set_rate(10, 1);
  const auto first = gate.reserve(m, 1'000'000);
  const auto second = gate.reserve(m, 1'000'000);
  CHECK(first == 1'000'000);
  CHECK(second == 1'100'000);
}
