// Backoff and retry budget (see retry_policy.hpp).
#include "core/dispatch/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace fleetcast {

namespace {
constexpr double budget_floor = 10;
}

std::uint32_t retry_policy::delay_ms(std::uint32_t next_try, double unit,
                                     std::uint32_t retry_after_ms) const noexcept {
  const double exponent = std::min<std::uint32_t>(next_try > 1 ? next_try - 2 : 0, 30);
  const double cap = std::min<double>(
      config_.max_delay_ms, static_cast<double>(config_.base_delay_ms) * std::pow(2.0, exponent));
  const auto jittered = static_cast<std::uint32_t>(unit * cap);
  return std::max(jittered, retry_after_ms);
}

bool retry_policy::budget_exhausted() const noexcept {
  return static_cast<double>(retries_ + 1) >
         budget_ratio_ * static_cast<double>(requests_) + budget_floor;
}

bool retry_policy::allow_retry(std::uint32_t tries) noexcept {
  if (tries >= config_.max_attempts || budget_exhausted()) return false;
  ++retries_;
  return true;
}

}  // namespace fleetcast
