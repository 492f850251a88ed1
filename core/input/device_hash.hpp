// device_hash: a stable 64-bit hash of a device's identity (productKey and
// deviceKey). Stable across processes, machines and versions: the duplicate
// filter and `--shard I/N` depend on it. Changing it changes which shard
// owns a device, so it must never change.
#pragma once

#include <cstdint>
#include <string_view>

namespace fleetcast {

// MurmurHash64A over the bytes of `s`, with seed.
std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept;

// The device's identity hash: productKey, then deviceKey (length-separated,
// so ("ab","c") and ("a","bc") differ).
std::uint64_t device_hash(std::string_view product_key, std::string_view device_key) noexcept;

}  // namespace fleetcast
