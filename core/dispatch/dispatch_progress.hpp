// dispatch_progress: a rollout's progress at one moment, for progress
// displays, the daemon's /jobs and its progress events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fleetcast {

// A snapshot for progress displays.
struct dispatch_progress {
  std::uint64_t records = 0;  // input records read so far
  std::uint64_t done = 0;     // records with a final result
  std::uint64_t succeeded = 0, failed = 0, skipped = 0;
  std::uint64_t requests = 0, retries = 0;
  std::size_t batch_size = 0;
  double elapsed_s = 0;
  double rate_wait_s = 0;       // time requests waited for a rate limit (summed over connections)
  bool input_complete = false;  // every record has been read
  // What sending waits for, when it waits for something worth saying (no
  // connection, a fresh token, a long Retry-After); empty otherwise.
  std::string waiting_for;
};

}  // namespace fleetcast
