// Shards of an input (see shard.hpp).
#include <fleetcast/core/input/shard.hpp>

#include <fmt/format.h>

#include <charconv>

namespace fleetcast {

std::uint32_t shard_of(std::uint64_t device_fingerprint, std::uint32_t n) noexcept {
  // A multiply first: the duplicate filter indexes by the fingerprint's own
  // bits, and a shard must not select a band of them.
  const std::uint64_t mixed = device_fingerprint * 0xD6E8FEB86659FD93ULL;
  return static_cast<std::uint32_t>(((mixed >> 32) * n) >> 32);
}

bool shard_spec::owns_device(std::uint64_t device_fingerprint) const noexcept {
  return whole() || shard_of(device_fingerprint, count) == index;
}

std::string to_string(const shard_spec& s) {
  return fmt::format("{}/{}", s.index, s.count);
}

std::optional<shard_spec> parse_shard(std::string_view text, std::string& error) {
  const auto slash = text.find('/');
  shard_spec s;
  auto number = [](std::string_view part, std::uint32_t& out) {
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc() && end == part.data() + part.size() && !part.empty();
  };
  if (slash == std::string_view::npos || !number(text.substr(0, slash), s.index) ||
      !number(text.substr(slash + 1), s.count)) {
    error = fmt::format("--shard {}: expected I/N, e.g. 0/4 (shard I of N, I from 0)", text);
    return std::nullopt;
  }
  if (s.count < 1 || s.count > 65536) {
    error = fmt::format("--shard {}: N must be 1 to 65536", text);
    return std::nullopt;
  }
  if (s.index >= s.count) {
    error = fmt::format("--shard {}: I must be below N (shards are numbered 0 to {})", text,
                        s.count - 1);
    return std::nullopt;
  }
  return s;
}

std::optional<shard_spec> shard_from_completion_index(std::string_view count, const char* index,
                                                      std::string& error) {
  if (index == nullptr) {
    error = fmt::format(
        "--shards {}: JOB_COMPLETION_INDEX is not set (Kubernetes sets it in the pods of an "
        "Indexed Job); elsewhere say which shard with --shard I/{}",
        count, count);
    return std::nullopt;
  }
  auto s = parse_shard(fmt::format("{}/{}", index, count), error);
  if (!s) {
    error = fmt::format("--shards {} with JOB_COMPLETION_INDEX={}: {}", count, index,
                        error.substr(error.find(": ") + 2));
  }
  return s;
}

}  // namespace fleetcast
