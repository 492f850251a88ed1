// fingerprint_set: the devices seen so far in an input, as 64-bit identity
// hashes (device_hash), in 256 open-addressing partitions chosen by the top
// bits. A partition grows by half when 85% full, one at a time, so that
// growing never holds two copies of the whole set: about 9 to 15 bytes per
// device, no allocation per insert. Two different devices share a
// fingerprint with probability about n^2 / 2^65 (under 3e-6 for 10 million
// devices); the second would then be reported as a duplicate.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace fleetcast {

class fingerprint_set {
 public:
  // True when the fingerprint was new (and is now in the set).
  bool insert(std::uint64_t fingerprint);
  // Asks the CPU to fetch the fingerprint's home slot, for an insert a few
  // records later (the table is larger than the caches: one miss each).
  void prefetch(std::uint64_t fingerprint) const noexcept;
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept;

 private:
  struct partition {
    std::vector<std::uint64_t> slots;  // 0 = empty
    std::size_t size = 0;
  };
  static void grow(partition& p);
  std::array<partition, 256> parts_;
  bool has_zero_ = false;  // the fingerprint 0, kept apart
  std::size_t size_ = 0;
};

}  // namespace fleetcast
