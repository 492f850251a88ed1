// --shard I/N: parsing, and N shards of one input covering every record once.
#include "core/shard.hpp"
#include "core/device_hash.hpp"
#include "core/device_stream.hpp"
#include "core/fair_rate_gate.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace fleetcast;

TEST_CASE("--shard parses I/N and names what is wrong") {
  std::string error;
  auto s = parse_shard("2/4", error);
  REQUIRE(s);
  CHECK(s->index == 2);
  CHECK(s->count == 4);
  for (const char* bad : {"4/4", "1", "a/4", "1/0", "-1/4", "1/4x", "/4", "1/", "0/70000"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(parse_shard(bad, error));
    CHECK(error.find(bad) != std::string::npos);
  }
}

TEST_CASE("N shards of one input: every record in exactly one, duplicates with their device") {
  // 3,000 devices, some repeated, some invalid (an empty deviceKey).
  std::string csv = "productKey,deviceKey\n";
  std::size_t records = 0;
  for (int i = 0; i < 3000; ++i) {
    csv += "pk" + std::to_string(i % 7) + ",dev" + std::to_string(i) + "\n";
    ++records;
    if (i % 97 == 0) {
      csv += "pk" + std::to_string(i % 7) + ",dev" + std::to_string(i) + "\n";  // a duplicate
      ++records;
    }
    if (i % 131 == 0) {
      csv += "pk1,\n";
      ++records;
    }
  }
  for (std::uint32_t n : {1u, 2u, 4u, 7u}) {
    CAPTURE(n);
    std::map<std::uint64_t, int> seen;  // index -> how many shards reported it
    std::map<std::string, std::uint32_t> device_shard;
    std::vector<std::size_t> per_shard(n);
    std::size_t duplicates = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      std::istringstream in(csv);
      device_stream stream(make_device_reader(device_format::csv, in, {}, false));
      stream.set_shard({i, n});
      device_record r;
      record_kind kind;
      while (stream.next(r, kind)) {
        ++seen[r.index];
        ++per_shard[i];
        if (kind == record_kind::duplicate) ++duplicates;
        if (kind != record_kind::invalid) {
          const auto key =
              std::string(r.device.product_key) + "/" + std::string(r.device.device_key);
          auto [it, fresh] = device_shard.emplace(key, i);
          CHECK(it->second == i);  // a device and its duplicates: one shard
        }
      }
    }
    CHECK(seen.size() == records);
    CHECK(std::all_of(seen.begin(), seen.end(), [](auto& e) { return e.second == 1; }));
    CHECK(duplicates == 31);        // found in every split: a duplicate stays with its device
    for (auto count : per_shard) {  // roughly even
      CHECK(static_cast<double>(count) > 0.8 * static_cast<double>(records) / n);
    }
  }
}

TEST_CASE("a device's shard is stable: fixed values guard against a changed hash") {
  // If these change, running shards of one job with two fleetcast versions
  // would send some devices twice: device_hash and shard_of must never change.
  CHECK(shard_of(0, 4) == 0);
  CHECK(shard_of(1, 4) == 3);
  CHECK(shard_of(0x123456789abcdefULL, 16) == 11);
  CHECK(shard_of(device_hash("p1", "d1"), 4) == 2);
  CHECK(shard_of(device_hash("p1", "d2"), 4) == 1);
}

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

TEST_CASE("a large input: records read ahead keep their order, duplicates found on both sides") {
  // Past 2^18 devices the stream reads ahead; duplicates of devices from
  // before the switch and after it, and bad records, come out in place.
  const int n = 300'000;
  std::string csv = "productKey,deviceKey\n";
  std::vector<std::string> expect;  // per record: "d" device, "u" duplicate, "i" invalid
  for (int i = 0; i < n; ++i) {
    csv += "p," + std::to_string(i) + "\n";
    expect.push_back("d");
    if (i % 10007 == 5) {  // repeats of an early device, throughout
      csv += "p,3\n";
      expect.push_back("u");
    }
    if (i % 20011 == 3) {
      csv += "p,\n";
      expect.push_back("i");
    }
  }
  std::istringstream in(csv);
  device_stream stream(make_device_reader(device_format::csv, in));
  device_record r;
  record_kind kind;
  std::size_t i = 0;
  int next_key = 0;
  bool keys_ok = true;
  while (stream.next(r, kind)) {
    REQUIRE(i < expect.size());
    CHECK(r.index == i);
    const char* got = kind == record_kind::device      ? "d"
                      : kind == record_kind::duplicate ? "u"
                                                       : "i";
    CHECK(expect[i] == got);
    if (kind == record_kind::device) {  // the keys are the record's own: 0, 1, 2, ...
      if (r.device.product_key != "p" || r.device.device_key != std::to_string(next_key++))
        keys_ok = false;
    }
    ++i;
  }
  CHECK(keys_ok);
  CHECK(i == expect.size());
}
