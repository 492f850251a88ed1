// Phases and cohorts: a sample of the fleet by the device's rank, the same
// for the same list, stratified by cohort with an exact minimum.
#include "core/dispatch/phase_plan.hpp"

#include "core/input/device_hash.hpp"
#include "core/input/shard.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

using namespace fleetcast;

namespace {
struct device {
  std::string pk, dk, gpk;
  pkdk_view view() const {
    pkdk_view v;
    v.product_key = pk;
    v.device_key = dk;
    v.gateway_product_key = gpk;
    v.gateway_device_key = gpk.empty() ? "" : "g";
    return v;
  }
  std::uint64_t hash() const { return device_hash(pk, dk); }
};

// `sizes[m]` devices of model m, in order (a list sorted by productKey).
std::vector<device> fleet(const std::vector<int>& sizes) {
  std::vector<device> out;
  for (std::size_t m = 0; m < sizes.size(); ++m)
    for (int i = 0; i < sizes[m]; ++i)
      out.push_back({fmt::format("m{:02}", m), fmt::format("d{}", i), m % 2 ? "gw-b" : "gw-a"});
  return out;
}

phase_plan census(const rollout_config& c, const std::vector<device>& devices) {
  phase_plan p(c);
  std::string error;
  for (const auto& d : devices) REQUIRE(p.count(d.view(), d.hash(), error));
  p.seal();
  for (const auto& d : devices) p.tally(d.view(), d.hash());
  return p;
}

std::uint32_t id_of(const phase_plan& p, std::string_view name) {
  for (std::uint32_t c = 0; c < p.cohorts(); ++c)
    if (p.cohort_name(c) == name) return c;
  FAIL("no cohort ", name);
  return 0;
}
}  // namespace

TEST_CASE("no canary, no phases: one phase holds every device") {
  const auto devices = fleet({50, 50});
  const auto p = census(rollout_config{}, devices);
  CHECK(p.phases() == 1);
  for (const auto& d : devices) CHECK(p.phase_of(d.view(), d.hash()) == 0);
}

TEST_CASE("a canary is a spread sample in proportion, with an exact minimum per cohort") {
  rollout_config c;
  c.canary_devices = 200;  // 2% of 10,000
  // 19 models of 510, then one of 310 (3%), sorted: the first 200 lines are m00 alone.
  std::vector<int> sizes(19, 510);
  sizes.push_back(310);
  const auto devices = fleet(sizes);
  const auto p = census(c, devices);
  REQUIRE(p.phases() == 2);
  REQUIRE(p.cohorts() == 20);
  CHECK(p.fleet() == 10'000);
  std::uint64_t canary = 0;
  for (std::uint32_t m = 0; m < 20; ++m) {
    const auto n = p.tallied(0, m);
    canary += n;
    CHECK(n >= 3);   // min_per_cohort, whatever its share
    CHECK(n <= 25);  // about 2% of 510 (10.2) or of 310 (6.2)
    CHECK(n + p.tallied(1, m) == p.cohort_devices(m));
  }
  CHECK(canary >= 150);
  CHECK(canary <= 260);
  // The same list gives the same canary; a device's phase is its own, not its place.
  const auto again = census(c, devices);
  for (const auto& d : devices)
    CHECK(again.phase_of(d.view(), d.hash()) == p.phase_of(d.view(), d.hash()));
  // Spread over the list: canary devices in the first and in the last tenth of m00.
  const auto m00 = id_of(p, "m00");
  int early = 0, late = 0;
  for (const auto& d : devices) {
    if (d.pk != "m00" || p.phase_of(m00, d.hash()) != 0) continue;
    const int i = std::stoi(d.dk.substr(1));
    early += i < 255;
    late += i >= 255;
  }
  CHECK(early > 0);
  CHECK(late > 0);
}

TEST_CASE("the minimum is exact for a cohort of at least cohort_min_devices, none below it") {
  rollout_config c;
  c.canary_devices = 1;  // a share of about nothing: only the minima
  c.min_per_cohort = 5;
  c.cohort_min_devices = 40;
  const auto devices = fleet({1000, 40, 39, 4});
  const auto p = census(c, devices);
  CHECK(p.tallied(0, id_of(p, "m00")) >= 5);
  CHECK(p.tallied(0, id_of(p, "m00")) <= 6);  // the minimum, and at most the one share device
  CHECK(p.tallied(0, id_of(p, "m01")) == 5);  // 40 devices: exactly its minimum
  CHECK(p.tallied(0, id_of(p, "m02")) == 0);  // 39: below cohort_min_devices
  CHECK(p.tallied(0, id_of(p, "m03")) == 0);
  // A cohort smaller than the minimum, at the threshold: all of it.
  c.cohort_min_devices = 1;
  const auto q = census(c, devices);
  CHECK(q.tallied(0, id_of(q, "m03")) == 4);
}

TEST_CASE("phases are cumulative shares, the rest follows the last, cohorts by gateway") {
  rollout_config c;
  phase_step a, b;
  a.share = 0.05;
  b.share = 0.25;
  c.phases = {a, b};
  c.min_per_cohort = 0;
  c.cohort_by = cohort_key::gateway_product_key;
  const auto devices = fleet(std::vector<int>(10, 2000));
  const auto p = census(c, devices);
  REQUIRE(p.phases() == 3);
  REQUIRE(p.cohorts() == 2);  // gw-a and gw-b
  std::uint64_t per_phase[3] = {};
  for (unsigned k = 0; k < 3; ++k)
    for (std::uint32_t g = 0; g < 2; ++g) per_phase[k] += p.tallied(k, g);
  CHECK(per_phase[0] > 800);  // 5% of 20,000 = 1,000
  CHECK(per_phase[0] < 1200);
  CHECK(per_phase[0] + per_phase[1] > 4600);  // 25% = 5,000 by the end of phase 1
  CHECK(per_phase[0] + per_phase[1] < 5400);
  CHECK(per_phase[0] + per_phase[1] + per_phase[2] == 20'000);
  // In proportion in each cohort: half of each phase behind each gateway type.
  const auto ga = id_of(p, "gw-a");
  CHECK(p.tallied(1, ga) * 10 > per_phase[1] * 4);
  CHECK(p.tallied(1, ga) * 10 < per_phase[1] * 6);
}

TEST_CASE("the rank is not the shard's order: every shard holds its share of the canary") {
  rollout_config c;
  c.canary_devices = 400;
  c.min_per_cohort = 0;
  const auto devices = fleet({20'000});
  const auto p = census(c, devices);
  std::map<std::uint32_t, int> by_shard;
  for (const auto& d : devices)
    if (p.phase_of(d.view(), d.hash()) == 0) ++by_shard[shard_of(d.hash(), 4)];
  REQUIRE(by_shard.size() == 4);
  for (const auto& [s, n] : by_shard) {
    CHECK(n > 60);  // about 100 each
    CHECK(n < 140);
  }
}

TEST_CASE("a list of more cohorts than max_cohorts is refused, naming cohort_by") {
  rollout_config c;
  c.canary_devices = 10;
  phase_plan p(c);
  std::string error;
  bool ok = true;
  for (std::size_t i = 0; i <= phase_plan::max_cohorts && ok; ++i) {
    const auto pk = fmt::format("p{}", i);
    pkdk_view v;
    v.product_key = pk;
    v.device_key = "d";
    ok = p.count(v, device_hash(pk, "d"), error);
  }
  CHECK(!ok);
  CHECK(error.starts_with("rollout.cohort_by: the device list has more than 100000 cohorts"));
}
