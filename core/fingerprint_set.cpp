// Open-addressing fingerprint set (see fingerprint_set.hpp).
#include "core/fingerprint_set.hpp"

namespace fleetcast {
namespace {
// Fold the high bits in so that fingerprints agreeing in their low bits spread.
inline std::size_t home(std::uint64_t f, std::size_t mask) noexcept {
  return static_cast<std::size_t>(f ^ (f >> 32)) & mask;
}
}  // namespace

void fingerprint_set::grow() {
  std::vector<std::uint64_t> old;
  old.swap(slots_);
  const std::size_t capacity = old.empty() ? 1024 : old.size() * 2;
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (std::uint64_t f : old) {
    if (f == 0) continue;
    std::size_t i = home(f, mask_);
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = f;
  }
}

bool fingerprint_set::insert(std::uint64_t fingerprint) {
  if (fingerprint == 0) {  // 0 marks an empty slot, so it is kept apart
    if (has_zero_) return false;
    has_zero_ = true;
    ++size_;
    return true;
  }
  if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // load factor at most 3/4
  std::size_t i = home(fingerprint, mask_);
  while (slots_[i] != 0) {
    if (slots_[i] == fingerprint) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = fingerprint;
  ++size_;
  return true;
}

}  // namespace fleetcast
