// rollout_plan: what a job would do, computed by streaming its devices
// through the same checks, chunker and request encoder a real run uses, and
// sending nothing (`fleetcast run --dry-run`).
#pragma once

#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace fleetcast {

struct rollout_plan {
  std::uint64_t records = 0;          // input records
  std::uint64_t devices = 0;          // records that would be sent
  std::uint64_t invalid = 0;          // skipped: not a valid device
  std::uint64_t duplicates = 0;       // skipped: seen before
  std::vector<std::string> problems;  // the first max_problems skip messages
  std::uint64_t batches = 0;
  std::size_t batch_size = 0;    // devices per batch (the starting size for "auto")
  std::size_t last_batch = 0;    // devices in the last batch
  std::uint64_t body_bytes = 0;  // JSON bodies of all requests
  std::size_t largest_body = 0;
  std::uint64_t canary_devices =
      0;                         // about the canary's size (canary_devices; the dry run counts it)
  double min_seconds = 0;        // at the configured rate; 0 when unlimited
  std::size_t filter_bytes = 0;  // memory held by the duplicate filter
  std::string fatal;             // why reading stopped early, if it did
};

rollout_plan plan_rollout(const job& j, device_stream& devices, std::size_t max_problems = 20);

}  // namespace fleetcast
