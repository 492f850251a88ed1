// Partitioned open-addressing fingerprint set (see fingerprint_set.hpp).
#include "core/fingerprint_set.hpp"

namespace fleetcast {
namespace {

// A slot for f in a table of n slots: the middle bits of f scaled to n
// (multiply-shift), so any table size works, not only powers of two.
inline std::size_t home(std::uint64_t f, std::size_t n) noexcept {
  const std::uint64_t mixed = f * 0x9E3779B97F4A7C15ULL;       // spread bits the partition shares
  return static_cast<std::size_t>(((mixed >> 32) * n) >> 32);  // n < 2^32 per partition
}

}  // namespace

void fingerprint_set::grow(partition& p) {
  std::vector<std::uint64_t> old;
  old.swap(p.slots);
  const std::size_t n = old.empty() ? 64 : old.size() + old.size() / 2;
  p.slots.assign(n, 0);
  for (std::uint64_t f : old) {
    if (f == 0) continue;
    std::size_t i = home(f, n);
    while (p.slots[i] != 0) i = i + 1 == n ? 0 : i + 1;
    p.slots[i] = f;
  }
}

bool fingerprint_set::insert(std::uint64_t fingerprint) {
  if (fingerprint == 0) {  // 0 marks an empty slot, so it is kept apart
    if (has_zero_) return false;
    has_zero_ = true;
    ++size_;
    return true;
  }
  partition& p = parts_[fingerprint >> 56];
  if ((p.size + 1) * 20 > p.slots.size() * 17) grow(p);  // load factor at most 0.85
  const std::size_t n = p.slots.size();
  std::size_t i = home(fingerprint, n);
  while (p.slots[i] != 0) {
    if (p.slots[i] == fingerprint) return false;
    i = i + 1 == n ? 0 : i + 1;
  }
  p.slots[i] = fingerprint;
  ++p.size;
  ++size_;
  return true;
}

void fingerprint_set::prefetch(std::uint64_t fingerprint) const noexcept {
  const partition& p = parts_[fingerprint >> 56];
  if (p.slots.empty()) return;
  __builtin_prefetch(p.slots.data() + home(fingerprint, p.slots.size()), 1);
}

std::size_t fingerprint_set::memory_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& p : parts_) bytes += p.slots.capacity() * sizeof(std::uint64_t);
  return bytes;
}

}  // namespace fleetcast
