// rollout_manifest: what a rollout is, recorded in its output folder
// (rollout.json) by the first run, so that --resume can refuse to continue
// a different rollout: the device list's digest, the endpoint, the command.
#pragma once

#include <fleetcast/core/protocol/command.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

struct rollout_manifest {
  std::string devices_source;                 // the device file as the job names it, or "inline"
  std::optional<std::string> devices_sha256;  // of the list's bytes; absent: not re-readable
  std::string endpoint;                       // the URL, or "emulator" for --emulate
  command cmd;

  // rollout.json's text, with its newline.
  std::string to_json() const;
  // Reads rollout.json; nullopt with `error` set when it is not one.
  static std::optional<rollout_manifest> parse(std::string_view json, std::string& error);
  // What differs from `now`, one phrase per difference naming the field and
  // both values (the command's data by digest only); empty when the same.
  std::vector<std::string> differences(const rollout_manifest& now) const;
};

}  // namespace fleetcast
