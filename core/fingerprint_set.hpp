// fingerprint_set: the set of devices seen so far in an input, as 64-bit
// identity hashes (device_hash) in one open-addressing table: 8 to 21 bytes
// per device, no allocation per insert. Two different devices share a
// fingerprint with probability about n^2 / 2^65 (under 3e-6 for 10 million
// devices); the second would then be reported as a duplicate.
#pragma once

#include <cstdint>
#include <vector>

namespace fleetcast {

class fingerprint_set {
 public:
  // True when the fingerprint was new (and is now in the set).
  bool insert(std::uint64_t fingerprint);
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(std::uint64_t); }

 private:
  void grow();
  std::vector<std::uint64_t> slots_;  // 0 = empty
  bool has_zero_ = false;             // the fingerprint 0, kept apart
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace fleetcast
