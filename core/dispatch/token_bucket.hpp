// token_bucket: a rate limit with a burst, in pure arithmetic over a time the
// caller passes in (microseconds on a steady clock). reserve() takes tokens
// now and says when the caller may go: tokens may go into debt, so that
// callers queue fairly behind one another instead of polling.
#pragma once

#include <cstdint>

namespace fleetcast {

class token_bucket {
 public:
  // rate: tokens per second (0 = unlimited); burst: the bucket's depth (>= 1).
  token_bucket(double rate, double burst) noexcept;

  // Takes n tokens at `now_us`; returns the time (>= now_us) at which the
  // caller may proceed: when min(n, burst) tokens are there. The rest is a
  // debt later callers wait for. Unlimited buckets always return now_us.
  std::int64_t reserve(double n, std::int64_t now_us) noexcept;

  // A new rate from now on (kept tokens stay); 0 = unlimited.
  void set_rate(double rate, std::int64_t now_us) noexcept;
  double rate() const noexcept { return rate_; }
  bool unlimited() const noexcept { return rate_ <= 0; }

 private:
  void refill(std::int64_t now_us) noexcept;
  double rate_;
  double burst_;
  double tokens_;
  std::int64_t last_us_ = 0;
  bool started_ = false;
};

}  // namespace fleetcast
