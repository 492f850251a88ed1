// `fleetcast bench`: a fleet-wide rollout benchmark.
#pragma once

#include <cstdint>
#include <string>

namespace fleetcast::app {

struct bench_flags {
  std::uint64_t devices = 1'000'000;
  std::uint64_t batch = 100;
  std::uint64_t connections = 8;
  std::uint64_t pipeline = 1;
  std::uint64_t latency_ms = 0;
  std::uint64_t emulator_threads = 1;
  bool tls = true;
  bool json = false;
  std::string target;   // another server instead of the in-process emulator
  std::string ca_file;  // the CA to trust for target
};

int bench(const bench_flags& flags);

}  // namespace fleetcast::app
