// batch: the devices of one request, stored in one arena so that adding a
// device costs no allocation once the batch has been used at its size.
// Each device keeps its input index, its attempts and whether an earlier
// attempt may already have reached it (uncertain).
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fleetcast {

class batch {
 public:
  batch() = default;

  // Appends a device with its 0-based input index. Keys must each be at most
  // max_key_bytes (validate_device enforces it upstream).
  void add(std::uint64_t index, const pkdk_view& device, std::uint32_t attempts = 0,
           bool uncertain = false);
  // The same, with the device's identity hash (device_hash) already known,
  // so that it is computed once per device, not again here.
  void add_hashed(std::uint64_t index, const pkdk_view& device, std::uint64_t fingerprint,
                  std::uint32_t attempts = 0, bool uncertain = false);

  std::size_t size() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return slots_.empty(); }
  pkdk_view device(std::size_t i) const noexcept;
  std::uint64_t index(std::size_t i) const noexcept { return slots_[i].index; }
  // device_hash of the device's productKey and deviceKey.
  std::uint64_t fingerprint(std::size_t i) const noexcept { return slots_[i].fingerprint; }
  std::uint32_t attempts(std::size_t i) const noexcept { return slots_[i].attempts; }
  bool uncertain(std::size_t i) const noexcept { return slots_[i].uncertain; }

  // Counts one more attempt for every device of the batch.
  void note_attempt() noexcept;
  // Marks every device uncertain: an earlier send may have been executed.
  void mark_uncertain() noexcept;

  // Empties the batch, keeping its capacity.
  void clear() noexcept;

  // Devices [first, last) as a batch of their own.
  batch slice(std::size_t first, std::size_t last) const;

 private:
  struct slot {
    std::uint64_t index;
    std::uint64_t fingerprint;
    std::uint32_t offset;
    std::uint16_t length[4];
    std::uint32_t attempts;
    bool uncertain;
    bool plain;  // pkdk_view::plain
  };
  std::string arena_;
  std::vector<slot> slots_;
};

}  // namespace fleetcast
