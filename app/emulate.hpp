// `fleetcast emulate`: the endpoint's emulator as a command, until SIGINT or
// SIGTERM.
#pragma once

#include <string_view>
#include <vector>

namespace fleetcast::app {

int emulate(const std::vector<std::string_view>& args);

}  // namespace fleetcast::app
