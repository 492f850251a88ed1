// dispatch_progress: a rollout's progress at one moment, for progress
// displays, the daemon's /jobs and its progress events.
#pragma once

#include <fleetcast/core/output/device_result.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fleetcast {

// A snapshot for progress displays.
struct dispatch_progress {
  std::uint64_t records = 0;  // input records read so far
  std::uint64_t done = 0;     // records with a final result
  std::uint64_t succeeded = 0, failed = 0, skipped = 0;
  std::array<std::uint64_t, outcome_reason_count> by_reason{};  // done, by reason
  std::uint64_t requests = 0, retries = 0;
  // Batches given up with attempts left because the retry budget was spent.
  std::uint64_t budget_refusals = 0;
  std::size_t batch_size = 0;
  double elapsed_s = 0;
  double rate_wait_s = 0;       // time requests waited for a rate limit (summed over connections)
  bool input_complete = false;  // every record has been read
  // What sending waits for, when it waits for something worth saying (no
  // connection, a fresh token, a long Retry-After); empty otherwise.
  std::string waiting_for;
  // The wait is on purpose (the time window, the canary, a long
  // Retry-After), not a stall.
  bool held = false;
  // The rollout guard: "canary", "canary passed", "running" (no canary) or
  // "aborted", and its verdict when it aborted.
  std::string guard_stage;
  std::string verdict;
};

}  // namespace fleetcast
