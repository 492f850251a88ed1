// The bring-up of a job's run, before anything is sent: written once, for
// `fleetcast run` and for each daemon job. The rollout is identified, its
// output folder opened and locked (on a resume, the kept results checked
// against the device list, read once more for that), the devices opened
// (this shard's), a canary's census taken (phase_plan.hpp), the folder's hooks attached to the
// engine's options, and, for a job with acks, the delivery stage opened over the folder's sink.
#pragma once

#include <fleetcast/core/input/shard.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include "net/session/delivery_stage.hpp"
#include "net/session/job_files.hpp"
#include "net/session/job_output.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace fleetcast::net {

// Which step refused the bring-up (the callers word their messages by it).
enum class bringup_step : std::uint8_t {
  none,      // brought up
  identify,  // the device list cannot be read to identify the rollout
  folder,    // the output folder refused (or failed): `outcome` says which
  devices,   // the device list cannot be opened
};

struct bringup_result {
  bringup_step step = bringup_step::none;
  open_outcome outcome = open_outcome::ok;
  std::string error;  // what is wrong, naming the file
  explicit operator bool() const noexcept { return step == bringup_step::none; }
};

// What a bring-up gives: the folder, the devices, the line breaks counted
// while identifying (for the progress line's total).
struct job_parts {
  job_output& output;
  opened_devices& devices;
  std::uint64_t newlines = 0;
};

// Identifies the rollout (`request.identity`; "emulator" as its endpoint
// when `emulated`), opens `j.output_dir` with `request`, verifies kept
// results, opens the devices (this shard's), attaches the folder to
// `options`. Nothing in the folder changes unless it passes.
bringup_result bring_up(const job& j, output_request& request,
                        const std::optional<shard_spec>& shard, bool emulated, job_parts& parts,
                        net::rollout_options& options);

// The delivery stage of a job with acks, over the folder's sink, opened
// (tickets of an earlier run loaded) and attached to `options` (after the
// folder: its journal records a batch before the stage marks it sent).
// Null with `error` when it cannot be opened; the caller abandons it.
std::unique_ptr<delivery_stage> open_delivery_stage(boost::asio::any_io_executor ex, const job& j,
                                                    job_output& output,
                                                    net::rollout_options& options,
                                                    std::string& error);

}  // namespace fleetcast::net
