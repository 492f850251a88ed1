// run_summary: the counters of summary.json. Counts by status always add up
// to the input's record count, because every record is counted exactly once
// through count().
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/output/device_result.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fleetcast {

enum class job_state : std::uint8_t { completed, aborted, cancelled, failed };
std::string_view to_string(job_state s) noexcept;

// One process's part of a rollout (a rollout resumed twice has three).
struct run_record {
  // Its final state; absent for a process that was killed (no summary of
  // its own), whose requests are known from the send journal.
  std::optional<job_state> state;
  double elapsed_s = 0;       // absent state: unknown, 0
  std::uint64_t devices = 0;  // records given an outcome by this run
  std::uint64_t requests = 0;
};

// Delivery acknowledgements (a job with acks): outcomes over the whole
// rollout (every succeeded device has one of them, or none within the
// wait: no_ack), and what this run's subscription brought besides.
struct delivery_summary {
  std::uint64_t delivered = 0, delivery_failed = 0, no_ack = 0;
  std::uint64_t waiting = 0;  // the wait was cut short (a signal): --resume waits on
  delivery_counts messages;   // this run's: duplicates, late, unmatched, ...
};

struct run_summary {
  std::string name;
  job_state state = job_state::completed;
  std::uint64_t records = 0;  // input records counted so far
  std::array<std::uint64_t, 3> by_status{};
  std::array<std::uint64_t, outcome_reason_count> by_reason{};
  std::uint64_t requests = 0;
  // Sends of a device beyond its first: the sum over results of
  // attempts - 1, so it always agrees with the results' attempts.
  std::uint64_t retries = 0;
  double elapsed_s = 0;  // the caller measures time; core never reads a clock
  std::size_t batch_size = 0;
  // The runs of the whole rollout, oldest first, the current one last (empty
  // for a library run that keeps no history).
  std::vector<run_record> runs;
  // Why the job failed (state failed), or the guard's verdict; empty otherwise.
  std::string reason;
  // A rollout in phases: where its guard stood at the end ("canary",
  // "phase 1 of 2", "phases passed", "aborted"); empty without phases.
  std::string stage;
  std::optional<delivery_summary> deliveries;  // a job with acks

  void count(const device_result& r) noexcept;
  // Adds the device counts of an earlier run that this one continues (--resume).
  void add_counts(const run_summary& earlier) noexcept;
  std::uint64_t count_of(device_status s) const noexcept {
    return by_status[static_cast<std::size_t>(s)];
  }
  std::uint64_t count_of(outcome_reason r) const noexcept {
    return by_reason[static_cast<std::size_t>(r)];
  }
  // Devices given an outcome by the current run per second of its elapsed
  // time (0 when no time passed). With runs, the last run's figures.
  double devices_per_second() const noexcept;
  // Exit status of `fleetcast run` (PRODUCT.md): 0 all succeeded; 1 some
  // failed or were skipped, or the job failed on the way; 3 aborted by the
  // rollout guard; 4 cancelled (signal, cancel request, end of the time
  // window). 2, an invalid job, is decided before a run starts. With
  // acks, a succeeded device not known delivered makes it 1.
  int exit_code() const noexcept;
  // summary.json, with its newline.
  std::string to_json() const;
};

}  // namespace fleetcast
