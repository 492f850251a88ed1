// adaptive_rate: the request rate the engine actually uses. On throttling
// (HTTP 429, 503, code 5340) it halves, at most once per second (answers to
// requests already in flight are one event); after each second without
// throttling it grows back by a tenth of the configured rate, never above
// it (AIMD, as TCP does). Pure: time is passed in.
#pragma once

#include <cstdint>

namespace fleetcast {

class adaptive_rate {
 public:
  // configured: requests/s (0 = unlimited: then throttling starts a limit at
  // `fallback` requests/s measured by the caller, and recovery lifts it again).
  explicit adaptive_rate(double configured) noexcept : configured_(configured), rate_(configured) {}

  // Throttled at now_us while running at about `observed_rps`.
  void on_throttle(std::int64_t now_us, double observed_rps) noexcept;
  // Time passes; recovery happens here. Returns true when the rate changed.
  bool tick(std::int64_t now_us) noexcept;

  double rate() const noexcept { return rate_; }  // 0 = unlimited
  double configured() const noexcept { return configured_; }
  bool throttled() const noexcept { return throttled_; }

 private:
  double configured_;
  double rate_;
  bool throttled_ = false;
  std::int64_t last_change_us_ = 0;
  double ceiling_ = 0;  // configured, or the rate first throttled at when unlimited
};

}  // namespace fleetcast
