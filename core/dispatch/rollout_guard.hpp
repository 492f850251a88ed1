// rollout_guard: the rollout's safety decisions, pure (time is passed in).
//
// Canary: the first `canary_devices` devices go alone; no other device is
// admitted until every canary device has an outcome. Then the verdict: a
// canary failure ratio above `abort_failure_ratio` aborts the rollout;
// otherwise it goes on after `canary_wait_s`.
// Abort: once at least `abort_min_devices` devices have an outcome, a ratio
// of failed (of the kinds in `abort_on`) to done above `abort_failure_ratio`
// aborts at once. With the defaults (no canary, ratio 1.0) nothing changes:
// a ratio never exceeds 1.
// Ramp: the request rate starts at ramp.start_rps and is multiplied by
// ramp.factor after every ramp.every_devices successful devices, up to the
// configured rate (AWS IoT Jobs' exponential rollout).
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/device_result.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace fleetcast {

class rollout_guard {
 public:
  // `rate_ceiling`: the job's requests/s, the ramp's end (0 = no limit).
  explicit rollout_guard(const rollout_config& config, double rate_ceiling = 0) noexcept;

  // How many more devices may be admitted into batches now.
  std::uint64_t admit_limit() const noexcept;
  void on_admitted(std::uint64_t devices) noexcept;
  // The input ended: a canary larger than the fleet is the whole fleet.
  void on_input_end() noexcept;
  // A final outcome of an admitted device (skips of invalid or duplicate
  // records are not outcomes of the rollout).
  void on_result(outcome_reason reason, std::int64_t now_us);
  // A delivery outcome of an accepted device (a job with acks): a
  // delivery_failed or no_ack in abort_on counts as a failure; a canary
  // waiting for acks (canary_wait_for_ack) is judged once the last comes.
  void on_delivery(delivery_outcome outcome, std::int64_t now_us);
  // Time passes: the canary wait ends here.
  void tick(std::int64_t now_us) noexcept;
  // When tick() may next change something (for a timer); max when never.
  std::int64_t next_change_us() const noexcept;

  bool aborted() const noexcept { return phase_ == phase::aborted; }
  // What the guard holds sending back for, for the progress line ("the
  // canary's results (40 of 100 devices)", "the canary's wait (25 s
  // left)"); empty while it holds nothing back.
  std::string holding_for(std::int64_t now_us) const;
  bool in_canary() const noexcept {
    return phase_ == phase::canary_sending || phase_ == phase::canary_waiting;
  }
  const std::string& verdict() const noexcept { return verdict_; }
  // Where the rollout stands: "canary" (its devices go or are judged),
  // "canary passed", "running" (a rollout without canary) or "aborted".
  std::string_view stage() const noexcept;
  // The ramp's request rate now; 0 when there is no ramp.
  double ramp_rate() const noexcept;

 private:
  enum class phase { canary_sending, canary_waiting, canary_cooldown, running, aborted };
  void judge_canary(std::int64_t now_us);
  void check_ratio();
  bool canary_complete() const noexcept {
    return done_ >= canary_size_ && canary_acks_pending_ == 0;
  }

  rollout_config config_;
  phase phase_;
  std::uint64_t admitted_ = 0;
  std::uint64_t canary_size_ = 0;
  std::uint64_t done_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t succeeded_ = 0;
  std::uint64_t canary_acks_pending_ = 0;  // accepted canary devices without a delivery outcome
  double rate_ceiling_;
  std::int64_t cooldown_until_us_ = 0;
  std::string verdict_;
};

}  // namespace fleetcast
