// chunker: forms batches of at most N devices from a stream of devices. The
// limit can change between batches (batch.max_devices "auto" settles on the
// size the server accepts). Batches are handed over by swapping buffers, so
// a steady stream allocates nothing.
#pragma once

#include <fleetcast/core/dispatch/batch.hpp>

#include <cstddef>
#include <cstdint>

namespace fleetcast {

class chunker {
 public:
  explicit chunker(std::size_t max_devices);

  std::size_t max_devices() const noexcept { return max_; }
  // Takes effect from the next device added; a batch already fuller than the
  // new limit is full.
  void set_max_devices(std::size_t max_devices) noexcept;

  // Adds a device to the batch being formed; true when that batch is full.
  // `uncertain`: an earlier run may already have sent it (--resume).
  bool add(std::uint64_t index, const pkdk_view& device, bool uncertain = false);
  // The same, with the device's identity hash already known (device_hash).
  bool add_hashed(std::uint64_t index, const pkdk_view& device, std::uint64_t fingerprint,
                  bool uncertain = false);
  bool full() const noexcept { return current_.size() >= max_; }
  bool empty() const noexcept { return current_.empty(); }

  // Moves the batch formed so far (full, or the last partial one) into `out`
  // and starts a new one with out's old buffers.
  void take(batch& out) noexcept;

 private:
  std::size_t max_;
  batch current_;
};

}  // namespace fleetcast
