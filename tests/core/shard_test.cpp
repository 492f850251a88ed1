// --shard I/N: parsing, and N shards of one input covering every record once;
// the device stream's read-ahead on a large input.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/input/shard.hpp>
#include "core/input/device_hash.hpp"

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

TEST_CASE("--shards N takes its index from JOB_COMPLETION_INDEX and refuses what does not fit") {
  std::string error;
  auto s = shard_from_completion_index("4", "3", error);
  REQUIRE(s);
  CHECK(s->index == 3);
  CHECK(s->count == 4);
  CHECK_FALSE(shard_from_completion_index("4", nullptr, error));
  CHECK(error.find("JOB_COMPLETION_INDEX is not set") != std::string::npos);
  CHECK(error.find("--shard I/4") != std::string::npos);
  CHECK_FALSE(shard_from_completion_index("4", "4", error));  // more completions than shards
  CHECK(error ==
        "--shards 4 with JOB_COMPLETION_INDEX=4: I must be below N (shards are numbered 0 to 3)");
  CHECK_FALSE(shard_from_completion_index("4", "x", error));
  CHECK(error.find("JOB_COMPLETION_INDEX=x") != std::string::npos);
  CHECK_FALSE(shard_from_completion_index("0", "0", error));
  CHECK(error.find("N must be 1 to 65536") != std::string::npos);
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

TEST_CASE("a large input: records read ahead keep their order, duplicates found on both sides") {
  // Once the filter passes 2 MiB the stream reads ahead; duplicates of
  // devices from before the switch and after it, and bad records, come out
  // in place. With the number of records known beforehand (the filter then
  // sized at once), it reads ahead from the first record.
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
  for (std::uint64_t hint : {std::uint64_t{0}, std::uint64_t{n}, std::uint64_t{n} / 10}) {
    CAPTURE(hint);
    std::istringstream in(csv);
    device_stream stream(make_device_reader(device_format::csv, in));
    stream.expect_records(hint);
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
    if (hint == n) CHECK(stream.memory_bytes() <= n * 12);  // sized once: no growth
  }
}
