// A shared subscription's routing (see ack_router.hpp).
#include "core/acks/ack_router.hpp"

#include "core/input/device_hash.hpp"

#include <algorithm>

namespace fleetcast {

ack_router::ack_router(std::uint64_t hold_ms, std::size_t max_held)
    : hold_ms_(hold_ms), max_held_(std::max<std::size_t>(1, max_held)) {}

void ack_router::join(member_id member, const member_view& view) {
  members_.emplace_back(member, &view);
  std::vector<std::string> known;
  for (const auto& [ticket, list] : held_)
    if (view.knows(ticket)) known.push_back(ticket);
  for (const auto& t : known) release(t, member);
}

void ack_router::leave(member_id member) {
  std::erase_if(members_, [member](const auto& m) { return m.first == member; });
}

bool ack_router::anyone_awaits(std::uint64_t device) const {
  for (const auto& [id, view] : members_)
    if (view->awaits(device)) return true;
  return false;
}

void ack_router::on_message(subscription_message m, std::uint64_t tag, std::uint64_t now_ms) {
  ++counts_.received;
  action a;
  a.tag = tag;
  if (m.what != subscription_message::kind::reqack) {
    ++(m.what == subscription_message::kind::other ? counts_.other_messages : counts_.malformed);
    actions_.push_back(std::move(a));
    return;
  }
  for (const auto& [id, view] : members_) {
    if (!view->knows(m.ticket)) continue;
    ++counts_.routed;
    a.what = action::kind::deliver;
    a.member = id;
    a.message = std::move(m);
    actions_.push_back(std::move(a));
    return;
  }
  const std::uint64_t device = device_hash(m.product_key, m.device_key);
  if (!anyone_awaits(device)) {  // no run can be given its ticket: not theirs
    ++counts_.unmatched;
    actions_.push_back(std::move(a));
    return;
  }
  order_.emplace_back(m.ticket, tag);
  auto& list = held_[m.ticket];
  list.push_back({tag, now_ms, device, std::move(m)});
  if (++held_count_ > max_held_) {
    ++counts_.overflow;
    give_up_oldest();
  }
}

void ack_router::release(const std::string& ticket, member_id member) {
  auto it = held_.find(ticket);
  if (it == held_.end()) return;
  for (auto& h : it->second) {
    ++counts_.early;
    action a;
    a.what = action::kind::deliver;
    a.member = member;
    a.tag = h.tag;
    a.early = true;
    a.message = std::move(h.message);
    actions_.push_back(std::move(a));
  }
  held_count_ -= it->second.size();
  held_.erase(it);  // its entries in order_ are skipped when they come up
}

void ack_router::on_ticket(member_id member, const std::string& ticket) {
  if (held_count_ > 0) release(ticket, member);
}

const ack_router::held_message* ack_router::oldest() {
  while (!order_.empty()) {
    const auto& [ticket, tag] = order_.front();
    if (auto it = held_.find(ticket); it != held_.end())
      for (const auto& h : it->second)
        if (h.tag == tag) return &h;
    order_.pop_front();  // given to its run already
  }
  return nullptr;
}

void ack_router::give_up_oldest() {
  if (!oldest()) return;
  const std::string ticket = std::move(order_.front().first);
  const std::uint64_t tag = order_.front().second;
  order_.pop_front();
  auto it = held_.find(ticket);
  std::erase_if(it->second, [tag](const held_message& h) { return h.tag == tag; });
  if (it->second.empty()) held_.erase(it);
  --held_count_;
  ++counts_.unmatched;
  action a;
  a.tag = tag;
  actions_.push_back(std::move(a));
}

void ack_router::advance(std::uint64_t now_ms) {
  for (const held_message* h; (h = oldest()) && h->at_ms + hold_ms_ <= now_ms;) give_up_oldest();
  if (held_count_ == 0) return;
  // Held for a device whose request got its result without this ticket:
  // nobody will be given it.
  for (auto it = held_.begin(); it != held_.end();) {
    auto& list = it->second;
    const auto before = list.size();
    std::erase_if(list, [&](const held_message& h) {
      if (anyone_awaits(h.device)) return false;
      ++counts_.unmatched;
      action a;
      a.tag = h.tag;
      actions_.push_back(std::move(a));
      return true;
    });
    held_count_ -= before - list.size();
    it = list.empty() ? held_.erase(it) : std::next(it);
  }
}

void ack_router::on_disconnect() {
  counts_.returned += held_count_;
  held_.clear();
  order_.clear();
  held_count_ = 0;
}

}  // namespace fleetcast
