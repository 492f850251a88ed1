// `fleetcast emulate`: the endpoint's emulator as a command, until SIGINT or
// SIGTERM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fleetcast::app {

// The command line's choices; each set one overrides the config file.
struct emulate_flags {
  std::optional<std::string> config_file, listen, record, cert_out;
  std::optional<unsigned> threads;
  std::optional<std::uint64_t> seed;
  std::optional<std::uint32_t> max_devices;
  bool plain = false;
};

int emulate(const emulate_flags& flags);

}  // namespace fleetcast::app
