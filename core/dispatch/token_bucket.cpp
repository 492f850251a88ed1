// Token bucket arithmetic (see token_bucket.hpp).
#include "core/dispatch/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace fleetcast {

token_bucket::token_bucket(double rate, double burst) noexcept
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)) {}

void token_bucket::refill(std::int64_t now_us) noexcept {
  if (!started_) {
    started_ = true;
    last_us_ = now_us;
    return;
  }
  if (now_us > last_us_) {
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_us - last_us_) * rate_ / 1e6);
    last_us_ = now_us;
  }
}

std::int64_t token_bucket::reserve(double n, std::int64_t now_us) noexcept {
  if (unlimited()) return now_us;
  refill(now_us);
  // Wait until the bucket holds what is asked (a request larger than the
  // bucket: until it is full), then take all of it: the debt makes later
  // callers wait, so the long-run rate holds exactly.
  const double need = std::min(n, burst_);
  const double missing = need - tokens_;
  tokens_ -= n;
  if (missing <= 0) return now_us;
  return now_us + static_cast<std::int64_t>(std::ceil(missing / rate_ * 1e6));
}

void token_bucket::set_rate(double rate, std::int64_t now_us) noexcept {
  if (!unlimited()) refill(now_us);
  rate_ = rate;
  last_us_ = now_us;
  started_ = true;
}

}  // namespace fleetcast
