// Phases and cohorts of a rollout (see phase_plan.hpp).
#include <fleetcast/core/dispatch/phase_plan.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace fleetcast {

std::uint64_t phase_rank(std::uint64_t h) noexcept {
  // splitmix64's finaliser over the hash with a constant of its own: a
  // bijection, so ranks are as distinct as the hashes, and independent of
  // the hash's order (which the shards use).
  std::uint64_t z = h ^ 0x5bd1e9955bd1e995ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string_view cohort_value(const pkdk_view& d, cohort_key by) noexcept {
  return by == cohort_key::gateway_product_key ? d.gateway_product_key : d.product_key;
}

phase_plan::phase_plan(const rollout_config& config)
    : by_(config.cohort_by),
      min_devices_(config.cohort_min_devices),
      min_per_cohort_(config.min_per_cohort),
      steps_(config.steps()) {}

bool phase_plan::count(const pkdk_view& d, std::uint64_t fingerprint, std::string& error) {
  const auto value = cohort_value(d, by_);
  auto it = index_.find(std::string(value));
  if (it == index_.end()) {
    if (cohorts_.size() >= max_cohorts) {
      error = fmt::format(
          "rollout.cohort_by: the device list has more than {} cohorts by {}: that is not a "
          "grouping of the fleet",
          max_cohorts, by_ == cohort_key::product_key ? "productKey" : "gatewayProductKey");
      return false;
    }
    it = index_.emplace(std::string(value), static_cast<std::uint32_t>(cohorts_.size())).first;
    cohorts_.push_back({std::string(value), 0, {}, 0, false});
  }
  auto& c = cohorts_[it->second];
  ++c.devices;
  ++fleet_;
  if (min_per_cohort_ > 0 && !steps_.empty()) {
    const auto rank = phase_rank(fingerprint);
    if (c.lowest.size() < min_per_cohort_) {
      c.lowest.push_back(rank);
      std::push_heap(c.lowest.begin(), c.lowest.end());
    } else if (rank < c.lowest.front()) {
      std::pop_heap(c.lowest.begin(), c.lowest.end());
      c.lowest.back() = rank;
      std::push_heap(c.lowest.begin(), c.lowest.end());
    }
  }
  return true;
}

void phase_plan::seal() {
  thresholds_.clear();
  std::uint64_t last = 0;
  for (const auto& s : steps_) {
    double share = s.share;
    if (s.devices > 0)
      share = fleet_ ? std::min(1.0, static_cast<double>(s.devices) / static_cast<double>(fleet_))
                     : 1.0;
    // share * 2^64, saturating: a share of 1 takes every rank.
    const long double scaled = static_cast<long double>(share) * 18446744073709551616.0L;
    std::uint64_t t = scaled >= 18446744073709551615.0L ? std::numeric_limits<std::uint64_t>::max()
                                                        : static_cast<std::uint64_t>(scaled);
    t = std::max(t, last);  // cumulative: never less than the phase before
    thresholds_.push_back(t);
    last = t;
  }
  for (auto& c : cohorts_) {
    c.floored = !c.lowest.empty() && c.devices >= min_devices_;
    c.floor_rank = c.floored ? *std::max_element(c.lowest.begin(), c.lowest.end()) : 0;
    std::vector<std::uint64_t>().swap(c.lowest);
  }
  tally_.assign(static_cast<std::size_t>(phases()) * cohorts_.size(), 0);
}

std::uint32_t phase_plan::cohort_of(const pkdk_view& d) const {
  if (index_.empty()) return no_cohort;
  // A transparent lookup is C++20's, but libstdc++ 12 lacks it for
  // unordered_map: a short string copy (cohort names are short).
  const auto it = index_.find(std::string(cohort_value(d, by_)));
  return it == index_.end() ? no_cohort : it->second;
}

unsigned phase_plan::phase_of(std::uint32_t cohort, std::uint64_t fingerprint) const noexcept {
  if (thresholds_.empty()) return 0;
  const auto rank = phase_rank(fingerprint);
  if (cohort != no_cohort && cohort < cohorts_.size() && cohorts_[cohort].floored &&
      rank <= cohorts_[cohort].floor_rank)
    return 0;
  for (std::size_t k = 0; k < thresholds_.size(); ++k) {
    if (rank < thresholds_[k]) return static_cast<unsigned>(k);
  }
  return static_cast<unsigned>(thresholds_.size());
}

unsigned phase_plan::phase_of(const pkdk_view& d, std::uint64_t fingerprint) const {
  if (thresholds_.empty()) return 0;
  return phase_of(cohort_of(d), fingerprint);
}

void phase_plan::tally(const pkdk_view& d, std::uint64_t fingerprint) {
  const auto c = cohort_of(d);
  if (c == no_cohort) return;
  ++tally_[static_cast<std::size_t>(phase_of(c, fingerprint)) * cohorts_.size() + c];
}

std::uint64_t phase_plan::tallied(unsigned phase, std::uint32_t cohort) const {
  const auto i = static_cast<std::size_t>(phase) * cohorts_.size() + cohort;
  return i < tally_.size() ? tally_[i] : 0;
}

bool take_census(phase_plan& plan, device_stream& devices, std::string& error) {
  device_record record;
  record_kind kind;
  while (devices.next(record, kind)) {
    if (kind == record_kind::device && !plan.count(record.device, record.fingerprint, error))
      return false;
  }
  if (!devices.fatal_error().empty()) {
    error = "the device list cannot be read: " + devices.fatal_error();
    return false;
  }
  plan.seal();
  return true;
}

}  // namespace fleetcast
