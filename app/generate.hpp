// `fleetcast generate-devices N FILE`: a synthetic fleet (CSV) for
// rehearsals, demos and benchmarks.
#pragma once

#include <string_view>
#include <vector>

namespace fleetcast::app {

int generate_devices(const std::vector<std::string_view>& args);

}  // namespace fleetcast::app
