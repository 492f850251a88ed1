// gateway_cap: at most N devices behind one gateway in flight at once (a
// gateway has little bandwidth to its sub-devices). A device is reserved
// from the moment it goes into a batch until its outcome is final; a device
// behind a full gateway waits here (up to a bound) while devices behind
// other gateways pass, and comes out once its gateway has room. Pure.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace fleetcast {

class gateway_cap {
 public:
  struct waiting_device {
    std::uint64_t index;
    pkdk device;
    bool uncertain;
  };

  // max_per_gateway 0: no cap (every device is admitted at once).
  explicit gateway_cap(std::uint64_t max_per_gateway, std::uint64_t max_waiting = 100'000)
      : cap_(max_per_gateway), max_waiting_(max_waiting) {}

  // A device from the input: true when it may go into a batch now (its
  // gateway's room is taken); false when it now waits here.
  bool admit(std::uint64_t index, const pkdk_view& device, bool uncertain);
  // A waiting device whose gateway has room (its room is taken), if any.
  bool next_ready(waiting_device& out);
  // The device's outcome is final: its gateway has room again.
  void release(const pkdk_view& device);

  std::uint64_t waiting() const noexcept { return waiting_; }
  // Too many wait already: read no more input until some leave.
  bool full() const noexcept { return waiting_ >= max_waiting_; }
  // Hands every waiting device to `f` once, and forgets them.
  template <typename F>
  void drain(F&& f) {
    for (auto& [key, g] : gateways_) {
      for (auto& w : g.waiting) f(w);
      g.waiting.clear();
    }
    ready_.clear();
    waiting_ = 0;
  }

 private:
  struct gateway {
    std::uint64_t reserved = 0;
    std::deque<waiting_device> waiting;
    bool queued = false;  // in ready_
  };
  bool capped(const pkdk_view& d) const noexcept { return cap_ > 0 && d.has_gateway(); }
  static std::string key_of(const pkdk_view& d);

  std::uint64_t cap_;
  std::uint64_t max_waiting_;
  std::unordered_map<std::string, gateway> gateways_;
  std::deque<std::string> ready_;  // gateways with waiting devices and room
  std::uint64_t waiting_ = 0;
};

}  // namespace fleetcast
