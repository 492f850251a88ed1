// rollout_guard: the rollout's safety decisions, pure (time is passed in).
//
// Phases (phase_plan.hpp): the devices of a phase go alone; no device of a
// later phase is admitted until every device of the phase has an outcome
// (and, when its gate waits for acks, a delivery outcome). Then the gate's
// verdict: a failure ratio above the gate's max_failure_ratio (default:
// abort_failure_ratio), in the phase as a whole or in one cohort of it with
// at least max(1, min_per_cohort) outcomes in the phase, aborts the
// rollout, naming the cohort; otherwise the next phase starts after the
// gate's wait_s (with wait_for "approval", once an operator approves). The
// first phase is the canary; canary_devices and its
// fields are a one-phase list. After the last gate comes the rest.
// Abort: outside the canary, once at least abort_min_devices devices have
// an outcome, a ratio of failed (of the kinds in `abort_on`) to done above
// abort_failure_ratio aborts at once; the same per cohort, once the cohort
// has max(abort_min_devices, min_per_cohort, 1) outcomes: a model of 3% of
// the fleet failing every device stops the rollout although the fleet's
// ratio stays low. With the defaults (no canary, ratio 1.0) nothing
// changes: a ratio never exceeds 1.
// Ramp: the request rate starts at ramp.start_rps and is multiplied by
// ramp.factor after every ramp.every_devices successful devices, up to the
// configured rate (AWS IoT Jobs' exponential rollout).
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/dispatch/phase_plan.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/core/output/operator_act.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace fleetcast {

class rollout_guard {
 public:
  // `rate_ceiling`: the job's requests/s, the ramp's end (0 = no limit).
  // `plan`: the phases and cohorts (outlives the guard); null: one phase.
  explicit rollout_guard(const rollout_config& config, double rate_ceiling = 0,
                         const phase_plan* plan = nullptr);

  // The phase whose devices go now (0 .. phases() - 1; the last is the rest).
  unsigned phase() const noexcept { return phase_; }
  unsigned phases() const noexcept { return phases_; }
  // Whether devices of phase() may be admitted into batches now.
  bool admitting() const noexcept { return state_ == state::sending; }
  void on_admitted(std::uint64_t devices) noexcept;
  // Every device of phase() has been read (admitted or passed over).
  void on_phase_read(std::int64_t now_us);
  // A final outcome of an admitted device (skips of invalid or duplicate
  // records are not outcomes of the rollout); `cohort` from the plan.
  void on_result(outcome_reason reason, std::uint32_t cohort, std::uint64_t index,
                 std::int64_t now_us);
  // A delivery outcome of an accepted device (a job with acks): a
  // delivery_failed or no_ack in abort_on counts as a failure; a phase
  // waiting for acks is judged once the last comes.
  void on_delivery(delivery_outcome outcome, std::uint64_t index, std::int64_t now_us);
  // An operator's approval: the phase whose gate waits for one goes on
  // (after its wait_s). Not applied, with why, when nothing waits for one.
  act_result approve(std::int64_t now_us);
  bool awaiting_approval() const noexcept { return state_ == state::approving; }
  // Time passes: a gate's wait ends here.
  void tick(std::int64_t now_us) noexcept;
  // When tick() may next change something (for a timer); max when never.
  std::int64_t next_change_us() const noexcept;

  bool aborted() const noexcept { return state_ == state::aborted; }
  // With on_cohort_failure "exclude": whether the cohort broke a rule (its
  // devices not yet sent are skipped, excluded), and what it broke.
  bool excluded(std::uint32_t cohort) const noexcept {
    return cohort < excluded_.size() && excluded_[cohort];
  }
  bool any_excluded() const noexcept { return !exclusions_.empty(); }
  const std::string& exclusion_of(std::uint32_t cohort) const;
  const std::vector<std::string>& exclusions() const noexcept { return exclusions_; }
  // What the guard holds sending back for, for the progress line ("the
  // canary's results (40 of 100 devices)", "phase 2's wait (25 s left)");
  // empty while it holds nothing back.
  std::string holding_for(std::int64_t now_us) const;
  bool in_canary() const noexcept { return phases_ > 1 && phase_ == 0 && !aborted(); }
  const std::string& verdict() const noexcept { return verdict_; }
  // Where the rollout stands: "canary" (its devices go or are judged),
  // "canary passed" (the rest goes), "phase 2 of 4", "running" (a rollout
  // without phases) or "aborted".
  std::string stage() const;
  // The ramp's request rate now; 0 when there is no ramp.
  double ramp_rate() const noexcept;

 private:
  enum class state : std::uint8_t { sending, judging, approving, cooling, aborted };
  void cool(std::int64_t now_us);
  struct tally {
    std::uint64_t done = 0, failed = 0;
  };
  std::string phase_name(unsigned p) const;
  std::string cohort_label(std::uint32_t c) const;
  const phase_gate& gate() const { return steps_[phase_]; }
  bool phase_complete() const noexcept {
    return read_ && phase_done_ >= phase_admitted_ && acks_pending_.empty();
  }
  void count_failure(std::uint32_t cohort);
  void judge_phase(std::int64_t now_us);
  void next_phase();
  void check_ratio(std::uint32_t cohort);
  void abort(std::string why);
  // A cohort's rule broken: aborts, or with exclude_failing_cohorts excludes it.
  void cohort_broke(std::uint32_t cohort, std::string why);
  // The fleet's counts without the excluded cohorts'.
  std::uint64_t fleet_done() const noexcept { return done_ - excluded_done_; }
  std::uint64_t fleet_failed() const noexcept { return failed_ - excluded_failed_; }

  rollout_config config_;
  const phase_plan* plan_;
  std::vector<phase_gate> steps_;
  unsigned phases_ = 1;
  unsigned phase_ = 0;
  state state_ = state::sending;
  bool read_ = false;  // the phase's devices have all been read
  std::uint64_t phase_admitted_ = 0, phase_done_ = 0, phase_failed_ = 0;
  std::vector<tally> phase_cohorts_;  // this phase, by cohort
  std::vector<tally> cohorts_;        // the run, by cohort
  // Accepted devices of a phase whose gate waits for acks: index -> cohort.
  std::unordered_map<std::uint64_t, std::uint32_t> acks_pending_;
  std::uint64_t done_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t succeeded_ = 0;
  double rate_ceiling_;
  std::int64_t cooldown_until_us_ = 0;
  std::string verdict_;
  std::vector<bool> excluded_;                  // by cohort
  std::vector<std::string> exclusions_;         // each excluded cohort's verdict, in order
  std::vector<std::uint32_t> exclusion_index_;  // by cohort: its text in exclusions_
  std::uint64_t excluded_done_ = 0, excluded_failed_ = 0;
  std::uint64_t phase_excluded_done_ = 0, phase_excluded_failed_ = 0;
};

}  // namespace fleetcast
