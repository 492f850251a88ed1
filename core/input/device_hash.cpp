// MurmurHash64A (Austin Appleby, public domain algorithm), little-endian reads.
#include "core/input/device_hash.hpp"

#include <cstring>

namespace fleetcast {

std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) noexcept {
  constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  std::uint64_t h = seed ^ (s.size() * m);
  const char* p = s.data();
  const char* end = p + (s.size() & ~std::size_t{7});
  for (; p != end; p += 8) {
    std::uint64_t k;
    std::memcpy(&k, p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const auto tail = reinterpret_cast<const unsigned char*>(p);
  switch (s.size() & 7) {
    case 7:
      h ^= std::uint64_t(tail[6]) << 48;
      [[fallthrough]];
    case 6:
      h ^= std::uint64_t(tail[5]) << 40;
      [[fallthrough]];
    case 5:
      h ^= std::uint64_t(tail[4]) << 32;
      [[fallthrough]];
    case 4:
      h ^= std::uint64_t(tail[3]) << 24;
      [[fallthrough]];
    case 3:
      h ^= std::uint64_t(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= std::uint64_t(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= std::uint64_t(tail[0]);
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

std::uint64_t device_hash(std::string_view product_key, std::string_view device_key) noexcept {
  const std::uint64_t h = hash_bytes(product_key, 0x666c656574636173ULL);  // "fleetcas"
  return hash_bytes(device_key, h ^ product_key.size());
}

}  // namespace fleetcast
