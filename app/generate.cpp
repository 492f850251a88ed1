// The generate-devices command (see generate.hpp): deterministic keys,
// written through one buffer, so any size streams out in constant memory.
#include "app/generate.hpp"

#include "core/device_hash.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fleetcast::app {
namespace {

constexpr std::string_view usage = R"(usage: fleetcast generate-devices N FILE [options]

Writes N devices as a CSV device list (header productKey,deviceKey,
gatewayProductKey,gatewayDeviceKey) with deterministic, distinct keys.

options:
  --products K        spread devices over K products (default 3)
  --gateway-every M   every Mth device is a sub-device behind a gateway (0 = none,
                      default 10); 50 sub-devices share a gateway
  --seed S            a different seed gives different keys (default 1)
)";

bool number(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int generate_devices(const std::vector<std::string_view>& args) {
  std::uint64_t count = 0, products = 3, gateway_every = 10, seed = 1;
  std::string file;
  bool have_count = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", usage);
      return 0;
    }
    if (a == "--products" || a == "--gateway-every" || a == "--seed") {
      std::uint64_t v = 0;
      if (i + 1 >= args.size() || !number(args[i + 1], v)) {
        fmt::print(stderr, "fleetcast generate-devices: {} needs a number\n", a);
        return 2;
      }
      ++i;
      (a == "--products" ? products : a == "--seed" ? seed : gateway_every) = v;
    } else if (!have_count) {
      if (!number(a, count)) {
        fmt::print(stderr, "fleetcast generate-devices: \"{}\" is not a device count\n{}", a,
                   usage);
        return 2;
      }
      have_count = true;
    } else if (file.empty()) {
      file = std::string(a);
    } else {
      fmt::print(stderr, "fleetcast generate-devices: unexpected \"{}\"\n{}", a, usage);
      return 2;
    }
  }
  if (!have_count || file.empty() || products == 0) {
    fmt::print(stderr, "{}", usage);
    return 2;
  }
  std::error_code ec;
  if (auto parent = std::filesystem::path(file).parent_path(); !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }
  std::FILE* out = std::fopen(file.c_str(), "wb");
  if (!out) {
    fmt::print(stderr, "fleetcast generate-devices: {}: cannot open for writing\n", file);
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
    fmt::print(stderr, "fleetcast generate-devices: {}: write failed\n", file);
    return 2;
  }
  fmt::print(stderr, "fleetcast: wrote {} devices to {}\n", count, file);
  return 0;
}

}  // namespace fleetcast::app
