// Loading what a job names from disk: the job file itself and its device
// list, opened as a device_stream. Errors name the file and say why.
#pragma once

#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/input/shard.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include "core/output/rollout_manifest.hpp"

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fleetcast::net {

// Job and config files are at most this large (inline device lists
// included; a larger fleet belongs in a device list file).
inline constexpr std::size_t max_job_file_bytes = 16u << 20;

// The job file's text; false with `error` set when it cannot be read or is
// larger than max_job_file_bytes.
bool read_text_file(const std::string& path, std::string& text, std::string& error);

// What stops a valid job from being sent, every problem at once: the device
// list cannot be read or holds no record (probe_devices), the token cannot be
// had (a file or variable; a token command runs only at the start).
std::vector<std::string> sendable_problems(const job& j, const std::optional<shard_spec>& shard,
                                           bool devices = true, bool token = true);

// A device_stream over the job's devices with the input it reads from.
struct opened_devices {
  std::unique_ptr<std::istream> input;
  std::unique_ptr<device_stream> stream;
  std::string name;  // the file, or "devices (inline)"
};

// Opens the job's device list; false with `error` set when it cannot.
bool open_devices(const job& j, opened_devices& out, std::string& error);

// A reader over the job's device list from its start, owning its input (a
// new pass of a phased rollout); null with `error` set when it cannot.
std::unique_ptr<device_reader> reopen_devices(const job& j, std::string& error);

// For a job with a canary or phases: the census of its list (this shard's)
// and the way to read it again, set in `options`. False with `error` when
// the list cannot be read again (a pipe) or its census fails.
bool plan_job_phases(const job& j, const std::optional<shard_spec>& shard,
                     net::rollout_options& options, std::string& error);

// The records the job's list holds, for progress (0: not known): a file's
// line breaks, counted in identify()'s pass (a CSV's header aside; an
// estimate, since blank lines and quoted line breaks count too), else the
// estimate from its first bytes; a shard's share of it.
std::uint64_t estimate_total(const job& j, std::uint64_t newlines, const opened_devices& devices,
                             const std::optional<shard_spec>& shard);

// Before anything is sent: whether the device list (this shard's part of it)
// has a record at all. A list that cannot be re-read (a pipe) is not
// probed: true. False with `error` saying why: the list cannot be opened or
// read, or it holds no record (the reference page's 5311).
bool probe_devices(const job& j, const std::optional<shard_spec>& shard, std::string& error);

// The SHA-256 of a file's bytes, in hex; false with `error` when unreadable.
// With `newlines`, also adds the file's count of '\n' to it (the same pass).
bool file_sha256(const std::string& path, std::string& hex, std::string& error,
                 std::uint64_t* newlines = nullptr);
std::string text_sha256(std::string_view text);

// What the rollout is, for its output folder: the device list's digest
// (absent when the list is not a regular file), the endpoint ("emulator"
// for a rehearsal) and the command. False with `error` when the list
// cannot be read. With `newlines`: the list file's line breaks, counted in
// the same pass (for the progress line's total).
bool identify(const job& j, bool emulated, rollout_manifest& out, std::string& error,
              std::uint64_t* newlines = nullptr);

}  // namespace fleetcast::net
