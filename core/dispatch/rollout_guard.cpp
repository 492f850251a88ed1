// Phase gates and abort verdicts (see rollout_guard.hpp).
#include "core/dispatch/rollout_guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fleetcast {

namespace {
bool is_failure(outcome_reason r) noexcept {
  return status_of(r) == device_status::failed;
}
double ratio_of(std::uint64_t failed, std::uint64_t done) noexcept {
  return done ? static_cast<double>(failed) / static_cast<double>(done) : 0.0;
}
}  // namespace

rollout_guard::rollout_guard(const rollout_config& config, double rate_ceiling,
                             const phase_plan* plan)
    : config_(config), plan_(plan), rate_ceiling_(rate_ceiling) {
  for (const auto& s : config.steps()) steps_.push_back(s.gate);
  phases_ = static_cast<unsigned>(steps_.size()) + 1;
  const std::size_t cohorts = plan ? plan->cohorts() : 0;
  cohorts_.resize(cohorts);
  phase_cohorts_.resize(cohorts);
  excluded_.resize(cohorts);
  exclusion_index_.resize(cohorts);
}

const std::string& rollout_guard::exclusion_of(std::uint32_t cohort) const {
  static const std::string none;
  return excluded(cohort) ? exclusions_[exclusion_index_[cohort]] : none;
}

void rollout_guard::cohort_broke(std::uint32_t cohort, std::string why) {
  if (!config_.exclude_failing_cohorts) return abort(std::move(why));
  if (excluded(cohort)) return;
  excluded_[cohort] = true;
  exclusion_index_[cohort] = static_cast<std::uint32_t>(exclusions_.size());
  // Its outcomes leave the fleet's counts: the rest is judged without it.
  excluded_done_ += cohorts_[cohort].done;
  excluded_failed_ += cohorts_[cohort].failed;
  phase_excluded_done_ += phase_cohorts_[cohort].done;
  phase_excluded_failed_ += phase_cohorts_[cohort].failed;
  // "aborted by the canary: cohort ..." -> "excluded by the canary: cohort ...".
  exclusions_.push_back(why.starts_with("aborted") ? "excluded" + why.substr(7) : why);
}

double rollout_guard::ramp_rate() const noexcept {
  const auto& r = config_.ramp;
  if (r.start_rps <= 0) return 0;
  double rate = r.start_rps;
  for (std::uint64_t steps = succeeded_ / std::max<std::uint64_t>(1, r.every_devices); steps > 0;
       --steps) {
    rate *= r.factor;
    if (rate_ceiling_ > 0 && rate >= rate_ceiling_) return rate_ceiling_;
    if (r.factor <= 1) break;
  }
  return rate_ceiling_ > 0 ? std::min(rate, rate_ceiling_) : rate;
}

void rollout_guard::on_admitted(std::uint64_t devices) noexcept {
  phase_admitted_ += devices;
}

void rollout_guard::on_phase_read(std::int64_t now_us) {
  if (state_ != state::sending || phase_ + 1 >= phases_) return;  // the rest has no gate
  read_ = true;
  state_ = state::judging;
  if (phase_complete()) judge_phase(now_us);
}

void rollout_guard::count_failure(std::uint32_t cohort) {
  ++failed_;
  ++phase_failed_;
  if (cohort < cohorts_.size()) {
    ++cohorts_[cohort].failed;
    ++phase_cohorts_[cohort].failed;
    if (excluded(cohort)) {  // one of its requests in flight at the exclusion
      ++excluded_failed_;
      ++phase_excluded_failed_;
    }
  }
}

void rollout_guard::on_result(outcome_reason reason, std::uint32_t cohort, std::uint64_t index,
                              std::int64_t now_us) {
  if (status_of(reason) == device_status::skipped || aborted()) return;
  ++done_;
  ++phase_done_;
  if (cohort < cohorts_.size()) {
    ++cohorts_[cohort].done;
    ++phase_cohorts_[cohort].done;
    if (excluded(cohort)) {
      ++excluded_done_;
      ++phase_excluded_done_;
    }
  }
  if (reason == outcome_reason::accepted) ++succeeded_;
  if (is_failure(reason) && (config_.abort_on >> static_cast<unsigned>(reason) & 1))
    count_failure(cohort);
  if (reason == outcome_reason::accepted && phase_ + 1 < phases_ && gate().wait_for_ack)
    acks_pending_.emplace(index, cohort);
  if (state_ == state::judging && phase_complete()) return judge_phase(now_us);
  check_ratio(cohort);
}

void rollout_guard::on_delivery(delivery_outcome outcome, std::uint64_t index,
                                std::int64_t now_us) {
  if (aborted()) return;
  std::uint32_t cohort = phase_plan::no_cohort;
  bool awaited = false;
  if (auto it = acks_pending_.find(index); it != acks_pending_.end()) {
    cohort = it->second;
    acks_pending_.erase(it);
    awaited = true;
  }
  const std::uint32_t bit = outcome == delivery_outcome::no_ack ? rollout_config::abort_on_no_ack
                            : outcome == delivery_outcome::delivery_failed
                                ? rollout_config::abort_on_delivery_failed
                                : 0;
  // The device was done (accepted); now it failed. A device not awaited by
  // a gate counts for the fleet only (its cohort is not kept per device).
  if (config_.abort_on & bit) {
    if (awaited) {
      count_failure(cohort);
    } else {
      ++failed_;
      ++phase_failed_;
    }
  }
  if (awaited && state_ == state::judging && phase_complete()) return judge_phase(now_us);
  if (done_ > 0) check_ratio(cohort);
}

void rollout_guard::abort(std::string why) {
  state_ = state::aborted;
  verdict_ = std::move(why);
  acks_pending_.clear();
}

std::string rollout_guard::cohort_label(std::uint32_t c) const {
  const auto by = plan_ && plan_->cohort_by() == cohort_key::gateway_product_key
                      ? "gatewayProductKey"
                      : "productKey";
  const auto& name = plan_->cohort_name(c);
  return name.empty() ? fmt::format("cohort {} (none)", by) : fmt::format("cohort {} {}", by, name);
}

std::string rollout_guard::phase_name(unsigned p) const {
  if (p == 0) return "the canary";
  return fmt::format("phase {}", p);
}

// The rule that applies while devices go: fleet-wide, then the cohort of
// the latest outcome. Not in the canary, which is judged as a whole.
void rollout_guard::check_ratio(std::uint32_t cohort) {
  if (in_canary() || aborted() || done_ == 0) return;
  const double limit = config_.abort_failure_ratio;
  const auto done = fleet_done(), failed = fleet_failed();
  if (const auto r = ratio_of(failed, done);
      done > 0 && done >= config_.abort_min_devices && r > limit) {
    return abort(fmt::format(
        "aborted: {} of {} devices failed ({:.1f}%), above abort_failure_ratio {} (after at "
        "least {}{})",
        failed, done, 100 * r, limit, config_.abort_min_devices,
        any_excluded() ? "; the excluded cohorts not counted" : ""));
  }
  if (cohort >= cohorts_.size() || excluded(cohort)) return;
  const auto& t = cohorts_[cohort];
  const auto min = std::max<std::uint64_t>(
      {config_.abort_min_devices, config_.min_per_cohort, std::uint64_t{1}});
  if (const auto r = ratio_of(t.failed, t.done); t.done >= min && r > limit) {
    cohort_broke(cohort, fmt::format("aborted: {}: {} of its {} devices failed ({:.1f}%), above "
                                     "abort_failure_ratio {} (after "
                                     "at least {})",
                                     cohort_label(cohort), t.failed, t.done, 100 * r, limit, min));
  }
}

void rollout_guard::judge_phase(std::int64_t now_us) {
  const auto& g = gate();
  const double limit = g.max_failure_ratio.value_or(config_.abort_failure_ratio);
  const char* rule = g.max_failure_ratio ? "max_failure_ratio" : "abort_failure_ratio";
  const auto name = phase_name(phase_);
  const auto fleet_check = [&] {
    const auto done = phase_done_ - phase_excluded_done_;
    const auto failed = phase_failed_ - phase_excluded_failed_;
    if (const auto r = ratio_of(failed, done); r > limit) {
      abort(fmt::format("aborted by {}: {} of its {} devices failed ({:.1f}%), above {} {}{}", name,
                        failed, done, 100 * r, rule, limit,
                        any_excluded() ? " (the excluded cohorts not counted)" : ""));
    }
    return aborted();
  };
  // Aborting: the phase as a whole first. Excluding: the cohorts first, then
  // the rest as a whole without them.
  if (!config_.exclude_failing_cohorts && fleet_check()) return;
  // The cohorts above the limit, among those with enough outcomes here,
  // worst first: an abort names the worst; exclusions take them all.
  const auto min = std::max<std::uint64_t>(config_.min_per_cohort, 1);
  std::vector<std::pair<double, std::uint32_t>> broken;
  for (std::uint32_t c = 0; c < phase_cohorts_.size(); ++c) {
    const auto& t = phase_cohorts_[c];
    if (t.done < min || excluded(c)) continue;
    if (const auto r = ratio_of(t.failed, t.done); r > limit) broken.emplace_back(-r, c);
  }
  std::sort(broken.begin(), broken.end());
  for (const auto& [negative_ratio, c] : broken) {
    const auto& t = phase_cohorts_[c];
    cohort_broke(c, fmt::format("aborted by {}: {}: {} of its {} devices failed ({:.1f}%), above "
                                "{} {}",
                                name, cohort_label(c), t.failed, t.done, -100 * negative_ratio,
                                rule, limit));
    if (aborted()) return;
  }
  if (config_.exclude_failing_cohorts && fleet_check()) return;
  // A phase with nothing to send in this run (a resume after it passed)
  // does not wait again, nor for an approval.
  if (g.wait_for_approval && phase_admitted_ > 0) {
    state_ = state::approving;
    return;
  }
  cool(now_us);
}

void rollout_guard::cool(std::int64_t now_us) {
  const bool sent = phase_admitted_ > 0;
  cooldown_until_us_ = now_us + (sent ? static_cast<std::int64_t>(gate().wait_s * 1e6) : 0);
  state_ = state::cooling;
  tick(now_us);
}

act_result rollout_guard::approve(std::int64_t now_us) {
  if (state_ != state::approving) {
    return {false, fmt::format("nothing waits for an approval (the rollout's stage: {}{})", stage(),
                               state_ == state::judging ? ", its gate not yet judged" : "")};
  }
  const auto name = phase_name(phase_);
  const double wait = gate().wait_s;
  cool(now_us);
  return {true, wait > 0 ? fmt::format("{} approved: the next phase starts after {} s", name, wait)
                         : fmt::format("{} approved: the next phase starts", name)};
}

void rollout_guard::next_phase() {
  ++phase_;
  state_ = state::sending;
  read_ = false;
  phase_admitted_ = phase_done_ = phase_failed_ = 0;
  phase_excluded_done_ = phase_excluded_failed_ = 0;
  std::fill(phase_cohorts_.begin(), phase_cohorts_.end(), tally{});
}

void rollout_guard::tick(std::int64_t now_us) noexcept {
  if (state_ == state::cooling && now_us >= cooldown_until_us_) next_phase();
}

std::string rollout_guard::stage() const {
  if (aborted()) return "aborted";
  if (phases_ == 1) return "running";
  if (phase_ == 0) return state_ == state::cooling ? "canary passed" : "canary";
  if (phase_ + 1 == phases_) return phases_ == 2 ? "canary passed" : "phases passed";
  return fmt::format("phase {} of {}", phase_, phases_ - 1);
}

std::string rollout_guard::holding_for(std::int64_t now_us) const {
  const auto name = phase_name(phase_);
  const auto possessive = phase_ == 0 ? std::string("the canary's") : name + "'s";
  if (state_ == state::judging) {
    if (phase_done_ >= phase_admitted_)
      return fmt::format("{} acknowledgements ({} to come)", possessive, acks_pending_.size());
    return fmt::format("{} results ({} of {} devices)", possessive, phase_done_, phase_admitted_);
  }
  if (state_ == state::approving) {
    return fmt::format("an operator's approval of {} (its gate passed: fleetcast approve)", name);
  }
  if (state_ == state::cooling && now_us < cooldown_until_us_) {
    return fmt::format("{} wait ({:.0f} s left)", possessive,
                       std::ceil(static_cast<double>(cooldown_until_us_ - now_us) / 1e6));
  }
  return {};
}

std::int64_t rollout_guard::next_change_us() const noexcept {
  return state_ == state::cooling ? cooldown_until_us_ : std::numeric_limits<std::int64_t>::max();
}

}  // namespace fleetcast
