// A rate limit shared fairly by several members (see fair_rate_gate.hpp).
#include "core/daemon/fair_rate_gate.hpp"

#include <algorithm>
#include <cmath>

namespace fleetcast {

fair_rate_gate::fair_rate_gate(double rate, double burst) : rate_(0), burst_(1) {
  set_rate(rate, burst);
}

void fair_rate_gate::set_rate(double rate, double burst) {
  rate_ = rate > 0 ? rate : 0;
  burst_ = std::max(1.0, std::floor(burst));
  period_us_ = rate_ > 0 ? 1e6 / rate_ : 0;
  // Slot numbers mean other times at another rate: start the calendar over.
  taken_.clear();
  for (auto& [id, m] : members_) m = member_state{};
}

std::uint32_t fair_rate_gate::join() {
  const auto id = next_id_++;
  members_.emplace(id, member_state{});
  return id;
}

void fair_rate_gate::leave(std::uint32_t member) {
  members_.erase(member);
}

std::int64_t fair_rate_gate::slot_at(std::int64_t us) const noexcept {
  return static_cast<std::int64_t>(std::floor(static_cast<double>(us) / period_us_));
}

std::int64_t fair_rate_gate::backlogged(std::int64_t now_slot) const noexcept {
  std::int64_t n = 0;
  for (const auto& [id, m] : members_) n += m.last_slot > now_slot ? 1 : 0;
  return n;
}

std::int64_t fair_rate_gate::reserve(std::uint32_t member, std::int64_t now_us) {
  if (rate_ <= 0) return now_us;
  auto& m = members_[member];
  const std::int64_t now_slot = slot_at(now_us);
  const std::int64_t oldest = now_slot - static_cast<std::int64_t>(burst_) + 1;
  taken_.erase(taken_.begin(), taken_.lower_bound(oldest));  // behind the burst window
  // Members waiting for a slot besides this one, and this one.
  const std::int64_t n = backlogged(now_slot) + (m.last_slot > now_slot ? 0 : 1);
  std::int64_t k = std::max(oldest, m.next_slot);
  for (auto it = taken_.lower_bound(k); it != taken_.end() && *it == k; ++it) ++k;
  taken_.insert(k);
  m.last_slot = k;
  m.next_slot = k + std::max<std::int64_t>(1, n);
  const auto at = static_cast<std::int64_t>(std::ceil(static_cast<double>(k) * period_us_));
  return std::max(now_us, at);
}

}  // namespace fleetcast
