// deliveries.ndjson: the delivery outcomes of a job with acks, one line per
// device as each is decided ({"index":N,"ticket":..,"delivery":..,
// "ackAt":ms|null}), appended before the acknowledgement that brought it is
// acknowledged to the subscription, so a crash loses none: --resume reads
// it back, waits only for the tickets it does not hold, and sends nothing
// again. At the end the outcomes go into results.ndjson itself (each line
// gains "delivery" and "ackAt"; still one line per device).
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/output/run_summary.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace fleetcast::net {

struct delivery_record {
  delivery_outcome outcome = delivery_outcome::no_ack;
  std::int64_t ack_at_ms = 0;
};

class delivery_journal {
 public:
  delivery_journal() = default;
  ~delivery_journal();
  delivery_journal(const delivery_journal&) = delete;
  delivery_journal& operator=(const delivery_journal&) = delete;

  // Opens DIR/deliveries.ndjson for appending (created if missing) and
  // reads what it holds; a last line cut short by a crash is cut off. False
  // with `error` when it cannot be read or written.
  bool open(const std::string& dir, std::string& error);
  const std::unordered_map<std::uint64_t, delivery_record>& recorded() const noexcept {
    return recorded_;
  }
  // Appends the outcomes (a line each); the error when they cannot be kept.
  std::string record(const std::vector<delivery_event>& events);
  // Appends an acknowledgement that came before its ticket ("index":null),
  // so that it is not lost with the process; read back by open().
  std::string record_early(const subscription_message& m);
  const std::vector<subscription_message>& early() const noexcept { return early_; }
  // Makes what was appended durable (fdatasync), when anything was since
  // the last sync; the error when that fails. Before an acknowledgement is
  // settled at the broker: once settled, the broker forgets the message.
  std::string sync();
  std::uint64_t syncs() const noexcept { return syncs_; }
  // Flushes to the disk and closes; the error when that fails.
  std::string close();

 private:
  int fd_ = -1;
  bool dirty_ = false;
  std::uint64_t syncs_ = 0;
  std::string path_;
  std::string buf_;
  std::unordered_map<std::uint64_t, delivery_record> recorded_;
  std::vector<subscription_message> early_;
};

// Reads results.ndjson (`results_path`): every succeeded device with a
// ticket is either settled (its outcome in the journal) or expected by the
// tracker, waiting from now_ms. Returns the error, or "".
std::string load_tickets(const std::string& results_path, const delivery_journal& journal,
                         delivery_tracker& tracker, std::uint64_t now_ms,
                         std::uint64_t* expected = nullptr);

// Rewrites results.ndjson (through a temporary file, then renamed) with
// each line's delivery from the journal, and counts the outcomes of the
// succeeded devices into `out`. Returns the error, or "".
std::string merge_deliveries(const std::string& results_path, const delivery_journal& journal,
                             delivery_summary& out);

}  // namespace fleetcast::net
