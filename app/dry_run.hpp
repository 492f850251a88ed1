// `fleetcast run JOB --dry-run`: validate the job, stream its devices, print
// the batch plan and the counts. Sends nothing.
#pragma once

#include <fleetcast/core/input/shard.hpp>

#include <optional>
#include <string>

namespace fleetcast::app {

// Returns the exit status: 0 every record would be sent, 1 some records
// would be skipped, 2 the job is invalid or its devices cannot be read.
// With a shard, only that shard's records are planned and counted.
// With `json`, the plan is one JSON object on standard output (its phases'
// devices by cohort included) and the human lines go to standard error.
int dry_run(const std::string& job_file, std::optional<shard_spec> shard = std::nullopt,
            bool json = false);

}  // namespace fleetcast::app
