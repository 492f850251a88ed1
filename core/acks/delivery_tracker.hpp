// delivery_tracker: joins the platform's answers (a ticket per accepted
// device) with its delivery acknowledgements (REQACK messages, matched by
// ticket, productKey and deviceKey checked). Sans-io: tickets, messages and
// time go in; delivery outcomes come out, each exactly once per device.
//
// - An acknowledgement that arrives before its ticket's answer was
//   processed is kept until the ticket comes, when its device's request is
//   on its way (written, not yet answered: sending()). One for a device
//   with no request on its way cannot be this run's: it is unmatched at
//   once, so a flood of other tickets never crowds out this run's. At most
//   max_early are kept; one more is unmatched and counted (overflow).
// - Several early acknowledgements may name one ticket with different
//   devices: the one naming the ticket's device decides, the others are
//   mismatched.
// - A repeated acknowledgement is counted (duplicate; contradictory when
//   its status differs) and changes nothing: the first one decides.
// - One whose ticket names another device is counted (mismatched) and not
//   applied. One for a ticket never seen is unmatched once the tracker is
//   closed (or when there is no room to keep it).
// - A device without an acknowledgement timeout_ms after its ticket came
//   has the outcome no_ack; a later acknowledgement is counted as late.
#pragma once

#include <fleetcast/core/acks/subscription_message.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace fleetcast {

enum class delivery_outcome : std::uint8_t { delivered, delivery_failed, no_ack };
std::string_view to_string(delivery_outcome o) noexcept;

// One device's delivery outcome, to be recorded.
struct delivery_event {
  std::uint64_t index = 0;  // the device's index among the input's records
  delivery_outcome outcome = delivery_outcome::no_ack;
  std::int64_t ack_at_ms = 0;    // the acknowledgement's own time (0 for no_ack)
  std::uint64_t latency_ms = 0;  // from the ticket's arrival to the ack's (0 if earlier)
  std::string ticket;
};

struct delivery_counts {
  std::uint64_t delivered = 0, delivery_failed = 0, no_ack = 0;
  std::uint64_t duplicates = 0;      // a second acknowledgement of a ticket, same status
  std::uint64_t contradictory = 0;   // a second one with the other status
  std::uint64_t mismatched = 0;      // the ticket is another device's
  std::uint64_t unmatched = 0;       // a ticket never given to this run
  std::uint64_t late = 0;            // after the device's wait had ended
  std::uint64_t early = 0;           // came before its ticket's answer (then applied)
  std::uint64_t other_messages = 0;  // not REQACK: ignored
  std::uint64_t malformed = 0;
  std::uint64_t overflow = 0;       // early, but no room to keep it (also unmatched)
  std::uint64_t refused_lines = 0;  // the source's lines too long or left unfinished

  delivery_counts& operator+=(const delivery_counts& c) noexcept;  // the sum of runs' counts
};

class delivery_tracker {
 public:
  explicit delivery_tracker(std::uint64_t timeout_ms, std::size_t max_early = 1 << 20);

  // The device's request is about to be written (every try): an
  // acknowledgement for it may come before its answer. `device` is
  // device_hash(productKey, deviceKey).
  void sending(std::uint64_t device);
  // The device has its result (with or without a ticket): no longer on its way.
  void resolved(std::uint64_t device);
  // Whether a request of the device is on its way (an early ack could be its).
  bool awaits(std::uint64_t device) const { return in_flight_.contains(device); }

  // A ticket given to the device at `index` (its answer processed, or its
  // result read back on --resume), at now_ms (a steady clock's ms).
  void expect(std::uint64_t index, std::string_view product_key, std::string_view device_key,
              std::string_view ticket, std::uint64_t now_ms);
  // A ticket whose outcome is already recorded (--resume): later messages
  // for it are duplicates, not unmatched.
  void settled(std::uint64_t index, std::string_view product_key, std::string_view device_key,
               std::string_view ticket, delivery_outcome outcome);
  // A message of the subscription, received at now_ms. True when it was
  // kept for a ticket not yet given (the caller records it, so that a crash
  // before the ticket comes loses nothing: replayed here on --resume).
  // `came_early`: a shared subscription held it until this run was given
  // its ticket (counted early when it decides).
  bool on_message(const subscription_message& m, std::uint64_t now_ms, bool came_early = false);
  // An acknowledgement an earlier run kept for its ticket (the journal, on
  // --resume): kept again whatever is on its way now.
  void keep_early(const subscription_message& m);
  // Whether this run was given the ticket (waiting or decided).
  bool knows(const std::string& ticket) const { return tickets_.contains(ticket); }
  // Ends the wait of every device whose deadline is at or before now_ms.
  void advance(std::uint64_t now_ms);
  // Ends every wait now (no_ack) and counts the acknowledgements kept for
  // tickets that never came as unmatched.
  void close();

  // Tickets still waiting for their acknowledgement.
  std::uint64_t waiting() const noexcept { return waiting_; }
  // The earliest deadline of a waiting ticket (0 when none waits).
  std::uint64_t next_deadline_ms() noexcept;
  // The latest deadline of any ticket (0 before the first).
  std::uint64_t last_deadline_ms() const noexcept {
    return deadlines_.empty() ? 0 : deadlines_.back().first;
  }
  const delivery_counts& counts() const noexcept { return counts_; }

  // Outcomes decided since the last take (in the order decided).
  std::vector<delivery_event>& events() noexcept { return events_; }

 private:
  enum class state : std::uint8_t { waiting, delivered, delivery_failed, no_ack };
  struct entry {
    std::uint64_t index;
    std::uint64_t device;  // device_hash of productKey and deviceKey
    std::uint64_t since_ms;
    state st;
  };
  struct early_ack {
    std::uint64_t device;
    bool delivered;
    std::int64_t at_ms;
  };
  bool keep(const subscription_message& m, std::uint64_t device);
  void decide(const std::string& ticket, entry& e, bool delivered, std::int64_t at_ms,
              std::uint64_t now_ms);

  std::uint64_t timeout_ms_;
  std::size_t max_early_;
  std::unordered_map<std::string, entry> tickets_;
  std::unordered_map<std::string, std::vector<early_ack>>
      early_;  // by ticket: one per device named
  std::size_t early_count_ = 0;
  std::unordered_set<std::uint64_t> in_flight_;
  std::deque<std::pair<std::uint64_t, std::string>> deadlines_;  // in order: one timeout for all
  std::uint64_t waiting_ = 0;
  delivery_counts counts_;
  std::vector<delivery_event> events_;
};

}  // namespace fleetcast
