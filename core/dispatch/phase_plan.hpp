// phase_plan: which phase of a rollout sends each device, and which cohort
// it belongs to.
//
// A phase's devices are a sample of the whole fleet, never the first lines
// of the list (exports are sorted by model, region or date: their first
// lines are one model of one batch). Each device has a rank, a 64-bit value
// derived from its stable hash (device_hash, the same in every process and
// version), so the same list always gives the same phases, spread over the
// whole list, and --resume and the shards keep the choice. The rank is
// remixed from the hash, so that a shard's devices (a range of the hash)
// are not one range of rank.
//
// Phase k (cumulative share s_k of the fleet) holds the devices whose rank
// is below s_k * 2^64 and not in an earlier phase: in every cohort about
// s_k of its devices, in proportion. On top, the first phase (the canary)
// holds the min_per_cohort lowest-ranked devices of every cohort of at
// least cohort_min_devices devices, exactly: a model of 3% of the fleet is
// in a 1% canary, at least min_per_cohort times. After the last configured
// phase comes the rest of the fleet (phase phases() - 1).
//
// The plan is made from a census: one pass over the list before the first
// request, counting the devices per cohort and keeping each cohort's
// min_per_cohort lowest ranks (memory: cohorts x min_per_cohort x 8 bytes,
// nothing per device).
#pragma once

#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/protocol/pkdk.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fleetcast {

// The device's rank among the fleet, from its device_hash.
std::uint64_t phase_rank(std::uint64_t device_fingerprint) noexcept;

// The cohort's name of a device: its productKey or its gateway's productKey.
std::string_view cohort_value(const pkdk_view& d, cohort_key by) noexcept;

class phase_plan {
 public:
  static constexpr std::uint32_t no_cohort = UINT32_MAX;
  static constexpr std::size_t max_cohorts = 100'000;

  // A plan of one phase (everything) and no cohorts: no canary.
  phase_plan() = default;

  // The census: every device of the input (valid, not a duplicate), once.
  // False (with `error` set) when the list has more cohorts than
  // max_cohorts: then cohort_by does not name a grouping.
  explicit phase_plan(const rollout_config& config);
  bool count(const pkdk_view& d, std::uint64_t fingerprint, std::string& error);
  // The census is over: the phases' thresholds are set.
  void seal();

  // Phases, the rest of the fleet included (1 with no canary and no phases).
  unsigned phases() const noexcept { return static_cast<unsigned>(thresholds_.size()) + 1; }
  // The phase that sends the device.
  unsigned phase_of(const pkdk_view& d, std::uint64_t fingerprint) const;
  // The same for a device whose cohort is known.
  unsigned phase_of(std::uint32_t cohort, std::uint64_t fingerprint) const noexcept;

  // The device's cohort (an index < cohorts()), or no_cohort when the census
  // did not see it.
  std::uint32_t cohort_of(const pkdk_view& d) const;
  std::size_t cohorts() const noexcept { return cohorts_.size(); }
  const std::string& cohort_name(std::uint32_t c) const { return cohorts_[c].name; }
  std::uint64_t cohort_devices(std::uint32_t c) const { return cohorts_[c].devices; }
  std::uint64_t fleet() const noexcept { return fleet_; }
  cohort_key cohort_by() const noexcept { return by_; }
  // The configured phases (the rest of the fleet has none).
  const std::vector<phase_step>& steps() const noexcept { return steps_; }

  // The phase's devices of one cohort, in a second pass (the dry run's
  // plan): tally() every device, then tallied(phase, cohort).
  void tally(const pkdk_view& d, std::uint64_t fingerprint);
  std::uint64_t tallied(unsigned phase, std::uint32_t cohort) const;

 private:
  struct cohort_entry {
    std::string name;
    std::uint64_t devices = 0;
    std::vector<std::uint64_t> lowest;  // a max-heap of the lowest ranks, then sealed
    std::uint64_t floor_rank = 0;       // sealed: ranks up to this are in the canary
    bool floored = false;
  };
  cohort_key by_ = cohort_key::product_key;
  std::uint64_t min_devices_ = 0;
  std::size_t min_per_cohort_ = 0;
  std::vector<phase_step> steps_;
  std::vector<std::uint64_t> thresholds_;  // phase k: rank below thresholds_[k]
  std::vector<cohort_entry> cohorts_;
  std::unordered_map<std::string, std::uint32_t> index_;
  std::uint64_t fleet_ = 0;
  std::vector<std::uint64_t> tally_;  // phase * cohorts + cohort
};

// The census of a job's list for its phases: every record of `devices`
// read (invalid and duplicate ones passed over), then the plan sealed.
// False with `error` set when the list cannot be read to its end or
// cohort_by does not group it.
bool take_census(phase_plan& plan, device_stream& devices, std::string& error);

}  // namespace fleetcast
