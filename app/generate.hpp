// `fleetcast generate-devices N FILE`: a synthetic fleet (CSV) for
// rehearsals, demos and benchmarks.
#pragma once

#include <cstdint>
#include <string>

namespace fleetcast::app {

struct generate_flags {
  std::uint64_t count = 0;
  std::string file;  // "-": standard output
  std::uint64_t products = 3;
  std::uint64_t gateway_every = 10;
  std::uint64_t seed = 1;
};

int generate_devices(const generate_flags& flags);

}  // namespace fleetcast::app
