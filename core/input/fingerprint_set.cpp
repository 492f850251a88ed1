// Partitioned open-addressing fingerprint set (see fingerprint_set.hpp).
#include <fleetcast/core/input/fingerprint_set.hpp>

#include <algorithm>

#include <sys/mman.h>

namespace fleetcast {
namespace {

// A slot for f in a table of n slots: the middle bits of f scaled to n
// (multiply-shift), so any table size works, not only powers of two.
inline std::size_t home(std::uint64_t f, std::size_t n) noexcept {
  const std::uint64_t mixed = f * 0x9E3779B97F4A7C15ULL;       // spread bits the partition shares
  return static_cast<std::size_t>(((mixed >> 32) * n) >> 32);  // n < 2^32 per partition
}

inline void place(std::uint64_t* slots, std::size_t n, std::uint64_t f) noexcept {
  std::size_t i = home(f, n);
  while (slots[i] != 0) i = i + 1 == n ? 0 : i + 1;
  slots[i] = f;
}

constexpr std::size_t huge_page = 2 << 20;

}  // namespace

void fingerprint_set::unmap::operator()(void* p) const noexcept {
  munmap(p, bytes);
}

void fingerprint_set::reserve(std::size_t devices) {
  if (size_ != 0 || region_ || devices == 0) return;
  // 75% load at the expected count leaves room for partitions a few
  // percent above the mean before any of them grows.
  std::size_t per = (devices / parts_.size()) * 4 / 3 + 64;
  if (per >= (std::size_t{1} << 32)) per = (std::size_t{1} << 32) - 1;
  const std::size_t bytes = per * parts_.size() * sizeof(std::uint64_t);
  // Anonymous memory reads as zeros (empty slots) and costs nothing until
  // touched. Aligned to 2 MiB so that the kernel can back it with huge pages.
  const std::size_t mapped = bytes + huge_page;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    for (auto& p : parts_) {  // no region: each partition on the heap at its size
      p.own.assign(per, 0);
      p.slots = p.own.data();
      p.capacity = per;
    }
    bytes_ = bytes;
    return;
  }
  region_ = std::unique_ptr<void, unmap>(raw, unmap{mapped});
  const auto start = (reinterpret_cast<std::uintptr_t>(raw) + huge_page - 1) & ~(huge_page - 1);
  auto* slots = reinterpret_cast<std::uint64_t*>(start);
  if (bytes >= 2 * huge_page) madvise(slots, bytes, MADV_HUGEPAGE);  // a hint: may be refused
  for (std::size_t k = 0; k < parts_.size(); ++k) {
    parts_[k].slots = slots + k * per;
    parts_[k].capacity = per;
  }
  bytes_ = bytes;
}

void fingerprint_set::grow(partition& p) {
  const std::size_t n = p.capacity == 0 ? 64 : p.capacity + p.capacity / 2;
  std::vector<std::uint64_t> bigger(n, 0);
  for (std::size_t i = 0; i < p.capacity; ++i) {
    if (p.slots[i] != 0) place(bigger.data(), n, p.slots[i]);
  }
  bytes_ += (n - p.own.size()) * sizeof(std::uint64_t);  // a slice of the region stays mapped
  p.own.swap(bigger);
  p.slots = p.own.data();
  p.capacity = n;
}

bool fingerprint_set::insert(std::uint64_t fingerprint) {
  if (fingerprint == 0) {  // 0 marks an empty slot, so it is kept apart
    if (has_zero_) return false;
    has_zero_ = true;
    ++size_;
    return true;
  }
  partition& p = parts_[fingerprint >> 56];
  if ((p.size + 1) * 20 > p.capacity * 17) grow(p);  // load factor at most 0.85
  const std::size_t n = p.capacity;
  std::uint64_t* slots = p.slots;
  std::size_t i = home(fingerprint, n);
  while (slots[i] != 0) {
    if (slots[i] == fingerprint) return false;
    i = i + 1 == n ? 0 : i + 1;
  }
  slots[i] = fingerprint;
  ++p.size;
  ++size_;
  return true;
}

void fingerprint_set::clear() noexcept {
  for (auto& p : parts_) {
    if (p.slots) std::fill(p.slots, p.slots + p.capacity, std::uint64_t{0});
    p.size = 0;
  }
  has_zero_ = false;
  size_ = 0;
}

void fingerprint_set::prefetch(std::uint64_t fingerprint) const noexcept {
  const partition& p = parts_[fingerprint >> 56];
  if (p.capacity == 0) return;
  __builtin_prefetch(p.slots + home(fingerprint, p.capacity), 1);
}

}  // namespace fleetcast
