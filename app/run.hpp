// `fleetcast run JOB.json [--resume] [--emulate]`: one rollout from the
// command line, with its outputs in the job's output folder.
#pragma once

#include "core/shard.hpp"

#include <optional>
#include <string>

namespace fleetcast::app {

struct run_flags {
  bool resume = false;
  bool emulate = false;             // an in-process emulator on a free loopback port
  std::string emulator_config;      // its config file, optional
  std::optional<shard_spec> shard;  // --shard I/N: only this shard's devices
};

// Exit status: 0 all succeeded, 1 some failed or were skipped (or the job
// failed on the way), 2 the job is invalid, 3 aborted or cancelled.
int run_job(const std::string& job_file, const run_flags& flags);

}  // namespace fleetcast::app
