// Joining answers and acknowledgements (see delivery_tracker.hpp).
#include "core/acks/delivery_tracker.hpp"

#include "core/input/device_hash.hpp"

namespace fleetcast {

std::string_view to_string(delivery_outcome o) noexcept {
  switch (o) {
    case delivery_outcome::delivered:
      return "delivered";
    case delivery_outcome::delivery_failed:
      return "delivery_failed";
    case delivery_outcome::no_ack:
      return "no_ack";
  }
  return "no_ack";
}

delivery_counts& delivery_counts::operator+=(const delivery_counts& c) noexcept {
  delivered += c.delivered;
  delivery_failed += c.delivery_failed;
  no_ack += c.no_ack;
  duplicates += c.duplicates;
  contradictory += c.contradictory;
  mismatched += c.mismatched;
  unmatched += c.unmatched;
  late += c.late;
  early += c.early;
  other_messages += c.other_messages;
  malformed += c.malformed;
  overflow += c.overflow;
  refused_lines += c.refused_lines;
  return *this;
}

delivery_tracker::delivery_tracker(std::uint64_t timeout_ms, std::size_t max_early)
    : timeout_ms_(timeout_ms), max_early_(max_early) {}

void delivery_tracker::expect(std::uint64_t index, std::string_view product_key,
                              std::string_view device_key, std::string_view ticket,
                              std::uint64_t now_ms) {
  const std::uint64_t device = device_hash(product_key, device_key);
  auto [it, fresh] =
      tickets_.try_emplace(std::string(ticket), entry{index, device, now_ms, state::waiting});
  if (!fresh) return;  // the same ticket twice (a platform mistake): the first device keeps it
  ++waiting_;
  if (auto e = early_.find(it->first); e != early_.end()) {
    const std::vector<early_ack> kept = std::move(e->second);
    early_.erase(e);
    early_count_ -= kept.size();
    const early_ack* mine = nullptr;
    for (const auto& a : kept) {
      if (a.device == device && !mine)
        mine = &a;
      else
        ++counts_.mismatched;  // another device's claim on this ticket
    }
    if (mine) {
      ++counts_.early;
      decide(it->first, it->second, mine->delivered, mine->at_ms, now_ms);
      return;
    }
  }
  deadlines_.emplace_back(now_ms + timeout_ms_, it->first);
}

void delivery_tracker::settled(std::uint64_t index, std::string_view product_key,
                               std::string_view device_key, std::string_view ticket,
                               delivery_outcome outcome) {
  const state st = outcome == delivery_outcome::delivered         ? state::delivered
                   : outcome == delivery_outcome::delivery_failed ? state::delivery_failed
                                                                  : state::no_ack;
  tickets_.try_emplace(std::string(ticket),
                       entry{index, device_hash(product_key, device_key), 0, st});
  if (auto e = early_.find(std::string(ticket)); e != early_.end()) {
    counts_.duplicates += e->second.size();  // kept, and already decided
    early_count_ -= e->second.size();
    early_.erase(e);
  }
}

void delivery_tracker::sending(std::uint64_t device) {
  in_flight_.insert(device);
}

void delivery_tracker::resolved(std::uint64_t device) {
  in_flight_.erase(device);
}

// Kept for a ticket not given yet: true when kept (not a repeat, and room).
bool delivery_tracker::keep(const subscription_message& m, std::uint64_t device) {
  auto& list = early_[m.ticket];
  for (const auto& a : list) {
    if (a.device != device) continue;
    ++(a.delivered == m.delivered ? counts_.duplicates : counts_.contradictory);
    return false;
  }
  if (early_count_ >= max_early_) {
    if (list.empty()) early_.erase(m.ticket);
    ++counts_.unmatched;
    ++counts_.overflow;
    return false;
  }
  list.push_back(early_ack{device, m.delivered, m.at_ms});
  ++early_count_;
  return true;
}

void delivery_tracker::keep_early(const subscription_message& m) {
  if (m.what == subscription_message::kind::reqack)
    keep(m, device_hash(m.product_key, m.device_key));
}

void delivery_tracker::decide(const std::string& ticket, entry& e, bool delivered,
                              std::int64_t at_ms, std::uint64_t now_ms) {
  e.st = delivered ? state::delivered : state::delivery_failed;
  --waiting_;
  ++(delivered ? counts_.delivered : counts_.delivery_failed);
  delivery_event ev;
  ev.index = e.index;
  ev.outcome = delivered ? delivery_outcome::delivered : delivery_outcome::delivery_failed;
  ev.ack_at_ms = at_ms;
  ev.latency_ms = now_ms > e.since_ms ? now_ms - e.since_ms : 0;
  ev.ticket = ticket;
  events_.push_back(std::move(ev));
}

bool delivery_tracker::on_message(const subscription_message& m, std::uint64_t now_ms,
                                  bool came_early) {
  using kind = subscription_message::kind;
  if (m.what == kind::other) {
    ++counts_.other_messages;
    return false;
  }
  if (m.what == kind::malformed) {
    ++counts_.malformed;
    return false;
  }
  const std::uint64_t device = device_hash(m.product_key, m.device_key);
  auto it = tickets_.find(m.ticket);
  if (it == tickets_.end()) {
    // Its answer may not have been processed yet, if its device's request
    // is on its way: then it is kept for the ticket. Else it is not ours.
    if (!in_flight_.contains(device)) {
      ++counts_.unmatched;
      return false;
    }
    return keep(m, device);
  }
  entry& en = it->second;
  if (en.device != device) {
    ++counts_.mismatched;
    return false;
  }
  switch (en.st) {
    case state::waiting:
      decide(it->first, en, m.delivered, m.at_ms, now_ms);
      if (came_early) ++counts_.early;
      break;
    case state::delivered:
      ++(m.delivered ? counts_.duplicates : counts_.contradictory);
      break;
    case state::delivery_failed:
      ++(m.delivered ? counts_.contradictory : counts_.duplicates);
      break;
    case state::no_ack:
      ++counts_.late;
      break;
  }
  return false;
}

void delivery_tracker::advance(std::uint64_t now_ms) {
  while (!deadlines_.empty() && deadlines_.front().first <= now_ms) {
    auto it = tickets_.find(deadlines_.front().second);
    if (it != tickets_.end() && it->second.st == state::waiting) {
      it->second.st = state::no_ack;
      --waiting_;
      ++counts_.no_ack;
      delivery_event ev;
      ev.index = it->second.index;
      ev.outcome = delivery_outcome::no_ack;
      ev.ticket = it->first;
      events_.push_back(std::move(ev));
    }
    deadlines_.pop_front();
  }
}

void delivery_tracker::close() {
  advance(UINT64_MAX);
  counts_.unmatched += early_count_;
  early_.clear();
  early_count_ = 0;
}

std::uint64_t delivery_tracker::next_deadline_ms() noexcept {
  while (!deadlines_.empty()) {  // the decided ones at the front go
    auto it = tickets_.find(deadlines_.front().second);
    if (it != tickets_.end() && it->second.st == state::waiting) return deadlines_.front().first;
    deadlines_.pop_front();
  }
  return 0;
}

}  // namespace fleetcast
