// command: the control command of a rollout, the fields of the request body
// other than deviceList, with the API's own meaning. Optional fields that are
// absent are not sent, so the platform applies its own defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace fleetcast {

enum class command_type : int { passthrough = 1, property = 2, service = 3 };
enum class data_format : int { hex = 1, text = 2 };

struct command {
  std::optional<std::int64_t> type;         // 1 passthrough, 2 property, 3 service
  std::optional<std::string> data;          // the command itself
  std::optional<std::int64_t> data_format;  // 1 hex, 2 text; required for passthrough
  std::optional<std::int64_t> qos;          // 0 or 1; platform default 1
  std::optional<std::int64_t> is_cache;     // 1 enable, 2 disable; platform default disabled
  std::optional<std::int64_t> cache_time;   // seconds, 1..7776000, required when is_cache == 1
  std::optional<std::int64_t> is_cover;     // 1 overwrite, 2 don't; valid when cache is enabled
};

}  // namespace fleetcast
