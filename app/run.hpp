// `fleetcast run JOB.json [--resume] [--emulate]`: one rollout from the
// command line, with its outputs in the job's output folder.
#pragma once

#include <fleetcast/core/input/shard.hpp>

#include <optional>
#include <string>

namespace fleetcast::app {

struct run_flags {
  bool resume = false;
  bool emulate = false;             // an in-process emulator on a free loopback port
  std::string emulator_config;      // its config file, optional
  std::optional<shard_spec> shard;  // --shard I/N: only this shard's devices
  // --retry-failed[=REASON,...]: those failures are sent again ("" = the defaults).
  std::optional<std::string> retry_failed;
  bool quiet = false;  // no progress line and no closing line (errors still)
  bool json = false;   // summary.json's text on stdout at the end
};

// Exit status: 0 all succeeded, 1 some failed or were skipped (or the job
// failed on the way), 2 the job is invalid and nothing was sent (another
// process holds the output folder, a resume whose rollout changed), 3
// aborted by the rollout guard, 4 cancelled. 1, 3 and 4 are resumable.
int run_job(const std::string& job_file, const run_flags& flags);

}  // namespace fleetcast::app
