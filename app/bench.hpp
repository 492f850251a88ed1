// `fleetcast bench`: a fleet-wide rollout benchmark.
#pragma once

#include <string_view>
#include <vector>

namespace fleetcast::app {

int bench(const std::vector<std::string_view>& args);

}  // namespace fleetcast::app
