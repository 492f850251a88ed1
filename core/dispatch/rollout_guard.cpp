// Canary and abort decisions (see rollout_guard.hpp).
#include "core/dispatch/rollout_guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fleetcast {

namespace {
bool is_failure(outcome_reason r) noexcept {
  return status_of(r) == device_status::failed;
}
}  // namespace

rollout_guard::rollout_guard(const rollout_config& config, double rate_ceiling) noexcept
    : config_(config),
      phase_(config.canary_devices > 0 ? phase::canary_sending : phase::running),
      canary_size_(config.canary_devices),
      rate_ceiling_(rate_ceiling) {}

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

std::uint64_t rollout_guard::admit_limit() const noexcept {
  switch (phase_) {
    case phase::canary_sending:
      return canary_size_ - admitted_;
    case phase::running:
      return std::numeric_limits<std::uint64_t>::max();
    default:
      return 0;
  }
}

void rollout_guard::on_admitted(std::uint64_t devices) noexcept {
  admitted_ += devices;
  if (phase_ == phase::canary_sending && admitted_ >= canary_size_) phase_ = phase::canary_waiting;
}

void rollout_guard::on_input_end() noexcept {
  if (phase_ == phase::canary_sending) {
    canary_size_ = admitted_;
    phase_ = phase::canary_waiting;
  }
}

void rollout_guard::on_result(outcome_reason reason, std::int64_t now_us) {
  if (status_of(reason) == device_status::skipped || phase_ == phase::aborted) return;
  ++done_;
  if (reason == outcome_reason::accepted) ++succeeded_;
  if (is_failure(reason) && (config_.abort_on >> static_cast<unsigned>(reason) & 1)) ++failed_;
  if (reason == outcome_reason::accepted && in_canary() && config_.canary_wait_for_ack)
    ++canary_acks_pending_;
  if (phase_ == phase::canary_waiting && canary_complete()) {
    judge_canary(now_us);
    return;
  }
  if (in_canary()) return;  // the canary is judged as a whole
  check_ratio();
}

void rollout_guard::on_delivery(delivery_outcome outcome, std::int64_t now_us) {
  if (phase_ == phase::aborted) return;
  const std::uint32_t bit = outcome == delivery_outcome::no_ack ? rollout_config::abort_on_no_ack
                            : outcome == delivery_outcome::delivery_failed
                                ? rollout_config::abort_on_delivery_failed
                                : 0;
  if (config_.abort_on & bit) ++failed_;  // the device was done (accepted); now it failed
  if (in_canary() && config_.canary_wait_for_ack) {
    if (canary_acks_pending_ > 0) --canary_acks_pending_;
    if (phase_ == phase::canary_waiting && canary_complete()) judge_canary(now_us);
    return;
  }
  if (in_canary() || done_ == 0) return;
  check_ratio();
}

void rollout_guard::check_ratio() {
  const auto ratio = static_cast<double>(failed_) / static_cast<double>(done_);
  if (done_ >= config_.abort_min_devices && ratio > config_.abort_failure_ratio) {
    phase_ = phase::aborted;
    verdict_ = fmt::format(
        "aborted: {} of {} devices failed ({:.1f}%), above abort_failure_ratio {} (after at least "
        "{})",
        failed_, done_, 100 * ratio, config_.abort_failure_ratio, config_.abort_min_devices);
  }
}

std::string_view rollout_guard::stage() const noexcept {
  switch (phase_) {
    case phase::canary_sending:
    case phase::canary_waiting:
      return "canary";
    case phase::canary_cooldown:
      return "canary passed";
    case phase::running:
      return canary_size_ > 0 ? "canary passed" : "running";
    case phase::aborted:
      break;
  }
  return "aborted";
}

void rollout_guard::judge_canary(std::int64_t now_us) {
  const auto ratio = canary_size_ ? static_cast<double>(failed_) / static_cast<double>(done_) : 0.0;
  if (ratio > config_.abort_failure_ratio) {
    phase_ = phase::aborted;
    verdict_ = fmt::format(
        "aborted by the canary: {} of its {} devices failed ({:.1f}%), above "
        "abort_failure_ratio {}",
        failed_, done_, 100 * ratio, config_.abort_failure_ratio);
    return;
  }
  cooldown_until_us_ = now_us + static_cast<std::int64_t>(config_.canary_wait_s * 1e6);
  phase_ = phase::canary_cooldown;
  tick(now_us);
}

void rollout_guard::tick(std::int64_t now_us) noexcept {
  if (phase_ == phase::canary_cooldown && now_us >= cooldown_until_us_) phase_ = phase::running;
}

std::string rollout_guard::holding_for(std::int64_t now_us) const {
  if (phase_ == phase::canary_waiting) {
    if (done_ >= canary_size_)
      return fmt::format("the canary's acknowledgements ({} to come)", canary_acks_pending_);
    return fmt::format("the canary's results ({} of {} devices)", done_, canary_size_);
  }
  if (phase_ == phase::canary_cooldown && now_us < cooldown_until_us_) {
    return fmt::format("the canary's wait ({:.0f} s left)",
                       std::ceil(static_cast<double>(cooldown_until_us_ - now_us) / 1e6));
  }
  return {};
}

std::int64_t rollout_guard::next_change_us() const noexcept {
  return phase_ == phase::canary_cooldown ? cooldown_until_us_
                                          : std::numeric_limits<std::int64_t>::max();
}

}  // namespace fleetcast
