// lane_state: the dispatcher's view of one connection (internal to
// core/dispatch): whether it is open, the batch it is about to write, the
// requests it has written and awaits answers for, in order, and the buffers
// its requests are encoded into and its answers decoded with.
#pragma once

#include "core/dispatch/dispatcher.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace fleetcast {

struct dispatcher::lane_state {
  lane_state(const job& j, unsigned i)
      : index(i), depth(std::max<std::uint32_t>(1, j.pipeline_depth)) {}

  // The connection as the dispatcher sees it.
  enum class link : std::uint8_t {
    closed,      // none: the next send connects first
    open,        // the driver holds an open connection
    must_close,  // the next action closes it (then closed)
    ended,       // done (or failed): no more actions
  };
  // The action handed out whose result the driver has not reported yet;
  // each report must answer it (else std::logic_error: a driver's bug).
  enum class report : std::uint8_t { none, connected, written, read };

  unsigned index;
  std::size_t depth;  // requests written before their answers are read
  link state = link::closed;
  report awaited = report::none;
  pending_ptr staged;              // taken and given its rate slot; not yet written
  std::int64_t go_us = 0;          // the staged batch's slot
  std::deque<pending_ptr> window;  // written, awaiting answers in order
  std::uint32_t connect_failures = 0;
  std::int64_t backoff_until_us = 0;  // no connection tries before then
  std::string head, body;             // the request being written
  response_decoder decoder;

  bool open() const noexcept { return state == link::open; }
  // An action that needs a report: recorded, so the report can be checked.
  void hand_out(report r) {
    if (awaited != report::none)
      throw std::logic_error("dispatcher: an action was asked for before the last was reported");
    awaited = r;
  }
  // A report from the driver: it must answer the action handed out.
  void answer(report r) {
    if (awaited != r)
      throw std::logic_error("dispatcher: a report that answers no action handed out");
    awaited = report::none;
  }
};

}  // namespace fleetcast
