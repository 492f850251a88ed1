// time_text: ISO 8601 times as job files write them and logs print them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

// Seconds since the Unix epoch of an ISO 8601 time with an offset
// ("2026-11-26T12:00:00+01:00", "...Z", fractions of a second allowed);
// nullopt when it is not one.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

// The reverse, in UTC: "2026-11-26T12:00:00Z" for seconds since the epoch,
// or with milliseconds ("2026-11-26T12:00:00.250Z") when `millis` is given.
std::string format_iso8601_utc(std::int64_t seconds, std::optional<int> millis = std::nullopt);

}  // namespace fleetcast
