// lane_state: the dispatcher's view of one connection (internal to
// core/dispatch): whether it is open, the batch it is about to write, the
// requests it has written and awaits answers for, in order, and the buffers
// its requests are encoded into and its answers decoded with.
#pragma once

#include "core/dispatch/dispatcher.hpp"

#include <algorithm>

namespace fleetcast {

struct dispatcher::lane_state {
  lane_state(const job& j, unsigned i)
      : index(i), depth(std::max<std::uint32_t>(1, j.pipeline_depth)) {}

  unsigned index;
  std::size_t depth;               // requests written before their answers are read
  bool open = false;               // the driver holds a connection
  bool busy = false;               // an action was handed out and not yet reported
  bool must_close = false;         // the next action closes the connection
  bool ended = false;              // done (or failed): no more actions
  pending_ptr staged;              // taken and given its rate slot; not yet written
  std::int64_t go_us = 0;          // the staged batch's slot
  std::deque<pending_ptr> window;  // written, awaiting answers in order
  std::uint32_t connect_failures = 0;
  std::int64_t backoff_until_us = 0;  // no connection tries before then
  std::string head, body;             // the request being written
  response_decoder decoder;
};

}  // namespace fleetcast
