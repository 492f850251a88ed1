// shard: `--shard I/N` splits one job among N processes (for example the
// pods of a Kubernetes Indexed Job) so that together they cover every record
// of the input exactly once and no device twice.
//
// A device belongs to shard device_hash(productKey, deviceKey) scaled to N
// (stable across processes, machines and versions: device_hash.hpp), so every
// duplicate of a device lands in the device's own shard and is reported there.
// A record that is not a valid device (no identity to hash) belongs to shard
// index mod N. Indices stay the input's: shard outputs concatenate into one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

struct shard_spec {
  std::uint32_t index = 0;  // I, 0-based
  std::uint32_t count = 1;  // N; 1 = the whole input

  bool whole() const noexcept { return count <= 1; }
  bool owns_device(std::uint64_t device_fingerprint) const noexcept;
  bool owns_record(std::uint64_t record_index) const noexcept {
    return whole() || record_index % count == index;
  }
};

// The shard of a device fingerprint among n shards.
std::uint32_t shard_of(std::uint64_t device_fingerprint, std::uint32_t n) noexcept;

// "I/N", as --shard takes it.
std::string to_string(const shard_spec& s);

// Parses "I/N" (0 <= I < N <= 65536); nullopt with `error` set otherwise.
std::optional<shard_spec> parse_shard(std::string_view text, std::string& error);

// `--shards N`: shard I of N where I is JOB_COMPLETION_INDEX, which
// Kubernetes sets in each pod of an Indexed Job (so the manifest need not
// pass it, and the pod can exec fleetcast without a shell). `index` is the
// variable's value, null when unset. nullopt with `error` set when N is not
// 1 to 65536, the variable is missing or not a number, or I >= N (a Job with
// more completions than shards: its extra pods must not run the rollout).
std::optional<shard_spec> shard_from_completion_index(std::string_view count, const char* index,
                                                      std::string& error);

}  // namespace fleetcast
