// AIMD rate adaptation (see adaptive_rate.hpp).
#include "core/dispatch/adaptive_rate.hpp"

#include <algorithm>

namespace fleetcast {

namespace {
constexpr std::int64_t second_us = 1'000'000;
constexpr double floor_rps = 0.5;
}  // namespace

void adaptive_rate::on_throttle(std::int64_t now_us, double observed_rps) noexcept {
  if (throttled_ && now_us - last_change_us_ < second_us) return;  // same event
  const double current = rate_ > 0 ? rate_ : std::max(observed_rps, 2 * floor_rps);
  if (!throttled_) ceiling_ = configured_ > 0 ? configured_ : current;
  rate_ = std::max(floor_rps, current / 2);
  throttled_ = true;
  last_change_us_ = now_us;
}

bool adaptive_rate::tick(std::int64_t now_us) noexcept {
  if (!throttled_ || now_us - last_change_us_ < second_us) return false;
  rate_ += ceiling_ / 10;
  last_change_us_ = now_us;
  if (rate_ >= ceiling_) {
    rate_ = configured_;  // back to the configured rate (or unlimited)
    throttled_ = false;
  }
  return true;
}

}  // namespace fleetcast
