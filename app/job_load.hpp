// Loading a job file for a command: its problems said on standard error.
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <optional>
#include <string>

namespace fleetcast::app {

// Reads and parses a job file; on failure prints every problem (file, line,
// field, code) to stderr and returns nullopt. With `check_sendable`, a job
// file with mistakes also has its device list and token checked (where
// their fields are right), so that one round shows everything.
std::optional<job> load_job(const std::string& job_file, bool check_sendable = false);

}  // namespace fleetcast::app
