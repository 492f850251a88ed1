// fingerprint_set: the devices seen so far in an input, as 64-bit identity
// hashes (device_hash), in 256 open-addressing partitions chosen by the top
// bits. A partition grows by half when 85% full, one at a time, so that
// growing never holds two copies of the whole set: about 9 to 15 bytes per
// device, no allocation per insert. When the number of devices is known or
// estimated beforehand, reserve() sizes every partition at once in one
// region (in huge pages where the system allows them): no step-by-step
// growth, and one TLB entry per 2 MiB instead of per 4 KiB. Two different
// devices share a fingerprint with probability about n^2 / 2^65 (under 3e-6
// for 10 million devices); the second would then be reported as a duplicate.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace fleetcast {

class fingerprint_set {
 public:
  fingerprint_set() = default;
  fingerprint_set(const fingerprint_set&) = delete;
  fingerprint_set& operator=(const fingerprint_set&) = delete;

  // Makes room for about `devices` fingerprints (at most 75% load, about
  // 10.7 bytes per device); more still fit, as partitions then grow on their
  // own. Only before the first insert; ignored afterwards.
  void reserve(std::size_t devices);
  // True when the fingerprint was new (and is now in the set).
  bool insert(std::uint64_t fingerprint);
  // Asks the CPU to fetch the fingerprint's home slot, for an insert a few
  // records later (the table is larger than the caches: one miss each).
  void prefetch(std::uint64_t fingerprint) const noexcept;
  // Empties the set, keeping its memory (a new pass over an input).
  void clear() noexcept;
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return bytes_; }

 private:
  struct partition {
    std::uint64_t* slots = nullptr;  // 0 = empty
    std::size_t capacity = 0;
    std::size_t size = 0;
    std::vector<std::uint64_t> own;  // the slots, once outside the reserved region
  };
  struct unmap {
    std::size_t bytes;
    void operator()(void* p) const noexcept;
  };
  void grow(partition& p);
  std::array<partition, 256> parts_;
  std::unique_ptr<void, unmap> region_{nullptr, unmap{0}};
  bool has_zero_ = false;  // the fingerprint 0, kept apart
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace fleetcast
