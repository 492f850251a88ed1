// The generate-devices command (see generate.hpp): deterministic keys,
// written through one buffer, so any size streams out in constant memory.
#include "app/generate.hpp"
#include "app/say.hpp"

#include "core/input/device_hash.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fleetcast::app {
namespace {}  // namespace

int generate_devices(const generate_flags& flags) {
  const auto& [count, file, products, gateway_every, seed] = flags;
  const bool to_stdout = file == "-";
  std::error_code ec;
  if (auto parent = std::filesystem::path(file).parent_path(); !to_stdout && !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }
  std::FILE* out = to_stdout ? stdout : std::fopen(file.c_str(), "wb");
  if (!out) {
    say("fleetcast generate-devices: {}: cannot open for writing\n", file);
    return 2;
  }
  std::string buf = "productKey,deviceKey,gatewayProductKey,gatewayDeviceKey\n";
  for (std::uint64_t i = 0; i < count; ++i) {
    // 13 digits from a hash of (seed, i), plus i itself: distinct and stable.
    const std::uint64_t h = hash_bytes({reinterpret_cast<const char*>(&i), sizeof i}, seed) % 1000;
    fmt::format_to(std::back_inserter(buf), "p{:05},86{:03}{:010}", i % products, h, i);
    if (gateway_every && i % gateway_every == gateway_every - 1) {
      fmt::format_to(std::back_inserter(buf), ",pgw001,gw{:08}\n", i / (gateway_every * 50));
    } else {
      buf += ",,\n";
    }
    if (buf.size() > (1 << 20)) {
      std::fwrite(buf.data(), 1, buf.size(), out);
      buf.clear();
    }
  }
  std::fwrite(buf.data(), 1, buf.size(), out);
  if (std::fclose(out) != 0) {
    say("fleetcast generate-devices: {}: write failed\n", file);
    return 2;
  }
  say("fleetcast: wrote {} devices to {}\n", count, to_stdout ? "standard output" : file);
  return 0;
}

}  // namespace fleetcast::app
