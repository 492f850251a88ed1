// fsync_policy: when a job's results and its send journal reach the disk
// (fdatasync). Written data survives a crash of the process in every case;
// this is about power loss and kernel crashes.
#pragma once

#include <cstdint>

namespace fleetcast {

struct fsync_policy {
  enum class mode { none, every_batch, interval } when = mode::none;
  std::uint32_t interval_ms = 1000;  // for mode::interval: at most this often
};

}  // namespace fleetcast
