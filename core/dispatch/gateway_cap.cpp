// Per-gateway reservations (see gateway_cap.hpp).
#include "core/dispatch/gateway_cap.hpp"

namespace fleetcast {

std::string gateway_cap::key_of(const pkdk_view& d) {
  std::string key;
  key.reserve(d.gateway_product_key.size() + d.gateway_device_key.size() + 1);
  key.append(d.gateway_product_key).append("/").append(d.gateway_device_key);
  return key;
}

bool gateway_cap::admit(std::uint64_t index, const pkdk_view& device, bool uncertain) {
  if (!capped(device)) return true;
  auto& g = gateways_[key_of(device)];
  if (g.reserved < cap_ && g.waiting.empty()) {
    ++g.reserved;
    return true;
  }
  g.waiting.push_back({index, pkdk::from(device), uncertain});
  ++waiting_;
  return false;
}

bool gateway_cap::next_ready(waiting_device& out) {
  while (!ready_.empty()) {
    auto& g = gateways_[ready_.front()];
    if (g.waiting.empty() || g.reserved >= cap_) {
      g.queued = false;
      ready_.pop_front();
      continue;
    }
    out = std::move(g.waiting.front());
    g.waiting.pop_front();
    --waiting_;
    ++g.reserved;
    return true;
  }
  return false;
}

void gateway_cap::release(const pkdk_view& device) {
  if (!capped(device)) return;
  auto it = gateways_.find(key_of(device));
  if (it == gateways_.end()) return;
  auto& g = it->second;
  if (g.reserved > 0) --g.reserved;
  if (!g.waiting.empty() && !g.queued && g.reserved < cap_) {
    g.queued = true;
    ready_.push_back(it->first);
  }
  if (g.reserved == 0 && g.waiting.empty() && !g.queued) gateways_.erase(it);  // keep the map small
}

}  // namespace fleetcast
