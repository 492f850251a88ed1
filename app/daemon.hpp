// `fleetcast daemon --spool DIR [--config FILE] [--shard I/N]`: a service fed
// by job files. Users drop jobs into DIR/incoming/ (renamed into place); the
// daemon claims each by renaming it into DIR/running/<job>/, runs several at
// once under shared connection and rate limits, and moves each finished job
// to DIR/done/<job>/ or DIR/failed/<job>/ (with reason.txt). After a crash it
// resumes what is in running/; DIR/cancel/<job> (or POST /jobs/<job>/cancel on
// the admin port) cancels a job; SIGTERM drains; SIGHUP reloads the config.
#pragma once

#include <fleetcast/core/input/shard.hpp>

#include <optional>
#include <string>

namespace fleetcast::app {

// Returns the exit status: 0 after a drain (SIGTERM, SIGINT), 2 when the
// daemon cannot start (a bad config, the spool in use).
struct daemon_flags {
  std::string spool;
  std::string config;               // empty: the defaults
  std::optional<shard_spec> shard;  // every job runs only this shard's devices
};

int daemon(const daemon_flags& flags);

}  // namespace fleetcast::app
