// run_summary: the counters of summary.json. Counts by status always add up
// to the input's record count, because every record is counted exactly once
// through count().
#pragma once

#include "core/device_result.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace fleetcast {

enum class job_state : std::uint8_t { completed, aborted, cancelled, failed };
std::string_view to_string(job_state s) noexcept;

struct run_summary {
  std::string name;
  job_state state = job_state::completed;
  std::uint64_t records = 0;  // input records counted so far
  std::array<std::uint64_t, 3> by_status{};
  std::array<std::uint64_t, outcome_reason_count> by_reason{};
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  double elapsed_s = 0;  // the caller measures time; core never reads a clock
  std::size_t batch_size = 0;

  void count(const device_result& r) noexcept;
  // Adds the device counts of an earlier run that this one continues (--resume).
  void add_counts(const run_summary& earlier) noexcept;
  std::uint64_t count_of(device_status s) const noexcept {
    return by_status[static_cast<std::size_t>(s)];
  }
  std::uint64_t count_of(outcome_reason r) const noexcept {
    return by_reason[static_cast<std::size_t>(r)];
  }
  // Devices with an outcome per second of elapsed time (0 when no time passed).
  double devices_per_second() const noexcept;
  // Exit status of `fleetcast run`: 0 all succeeded, 1 some failed or were
  // skipped, 3 aborted or cancelled (2, an invalid job, is decided earlier).
  int exit_code() const noexcept;
  // summary.json, with its newline.
  std::string to_json() const;
};

}  // namespace fleetcast
