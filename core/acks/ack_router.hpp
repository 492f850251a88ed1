// ack_router: one subscription shared by several runs (the daemon's jobs
// with one set of subscription credentials). Sans-io: messages, the runs'
// tickets and time go in; actions come out, for the caller to carry out in
// order (give a message to a run, then acknowledge it to the server).
//
// - A REQACK whose ticket a member's run knows goes to that member.
// - One whose ticket no run knows yet, for a device whose request a run has
//   on its way (written, not yet answered), is held, not acknowledged (its
//   answer may still come; the server keeps what is not acknowledged, so a
//   crash loses nothing): it goes to the member given the ticket later
//   (counted early), or, hold_ms after it came, or once no run has that
//   device's request on its way, or when more than max_held are held
//   (overflow), it is acknowledged and counted unmatched.
// - One for a device no run has a request of on its way cannot be any
//   run's: acknowledged and counted unmatched at once, so another
//   application's messages on the same queue never crowd out the runs'.
// - Other messages and unreadable ones are acknowledged and counted.
// - When the connection drops, what was held goes back to the server (it
//   delivers it again); the tags of that connection mean nothing any more.
#pragma once

#include <fleetcast/core/acks/subscription_message.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fleetcast {

class ack_router {
 public:
  using member_id = std::uint32_t;
  struct action {
    enum class kind : std::uint8_t { deliver, accept };
    kind what = kind::accept;
    member_id member = 0;   // deliver: to whom
    std::uint64_t tag = 0;  // the delivery to acknowledge (after delivering)
    bool early = false;     // deliver: it was held for its ticket
    subscription_message message;
  };
  // What the router asks of a member's run.
  struct member_view {
    virtual ~member_view() = default;
    virtual bool knows(const std::string& ticket) const = 0;  // was given the ticket
    virtual bool awaits(std::uint64_t device) const = 0;      // device_hash on its way
  };
  struct counts {
    std::uint64_t received = 0;        // every message
    std::uint64_t routed = 0;          // given to a member at once
    std::uint64_t early = 0;           // held, then given to the member given its ticket
    std::uint64_t unmatched = 0;       // no run's (at once, or held until no longer worth it)
    std::uint64_t overflow = 0;        // of those: held, given up for room
    std::uint64_t returned = 0;        // held when the connection dropped (delivered again)
    std::uint64_t other_messages = 0;  // not REQACK
    std::uint64_t malformed = 0;
  };

  explicit ack_router(std::uint64_t hold_ms = 600'000, std::size_t max_held = 100'000);

  // A member joins (it must outlive its membership); a resumed run has
  // tickets already: what is held for them goes there.
  void join(member_id member, const member_view& view);
  void leave(member_id member);
  // A message with its delivery tag, received at now_ms: routed, held or
  // acknowledged as the rules above say.
  void on_message(subscription_message m, std::uint64_t tag, std::uint64_t now_ms);
  // The member's run was given `ticket`: what is held for it goes there.
  void on_ticket(member_id member, const std::string& ticket);
  // Gives up on what was held since before now_ms - hold_ms, and on what
  // no run can take any more (no request of its device on its way).
  void advance(std::uint64_t now_ms);
  // The connection dropped: nothing held any more (the server has it).
  void on_disconnect();

  std::vector<action>& actions() noexcept { return actions_; }
  std::size_t held() const noexcept { return held_count_; }
  const counts& totals() const noexcept { return counts_; }

 private:
  struct held_message {
    std::uint64_t tag, at_ms, device;
    subscription_message message;
  };
  bool anyone_awaits(std::uint64_t device) const;
  // The oldest message still held (what was given to a run meanwhile is
  // dropped from the front of order_), or nullptr.
  const held_message* oldest();
  void give_up_oldest();
  void release(const std::string& ticket, member_id member);

  std::uint64_t hold_ms_;
  std::size_t max_held_;
  std::vector<std::pair<member_id, const member_view*>> members_;
  std::unordered_map<std::string, std::vector<held_message>> held_;
  std::deque<std::pair<std::string, std::uint64_t>> order_;  // (ticket, tag), oldest first
  std::size_t held_count_ = 0;
  counts counts_;
  std::vector<action> actions_;
};

}  // namespace fleetcast
