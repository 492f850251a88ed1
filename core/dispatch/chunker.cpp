// Batch forming (see chunker.hpp).
#include "core/dispatch/chunker.hpp"

#include <algorithm>
#include <utility>

namespace fleetcast {

chunker::chunker(std::size_t max_devices) : max_(std::max<std::size_t>(max_devices, 1)) {}

void chunker::set_max_devices(std::size_t max_devices) noexcept {
  max_ = std::max<std::size_t>(max_devices, 1);
}

bool chunker::add(std::uint64_t index, const pkdk_view& device, bool uncertain) {
  current_.add(index, device, 0, uncertain);
  return full();
}

bool chunker::add_hashed(std::uint64_t index, const pkdk_view& device, std::uint64_t fingerprint,
                         bool uncertain) {
  current_.add_hashed(index, device, fingerprint, 0, uncertain);
  return full();
}

void chunker::take(batch& out) noexcept {
  out.clear();
  std::swap(out, current_);
}

}  // namespace fleetcast
