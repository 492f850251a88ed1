// Validation of a command, a device and a device list against every rule of
// the batchControlDevice reference page (with the page's codes), plus the
// rules fleetcast adds before sending (command_errc). The emulator answers
// with the same checks, so there is one source of truth for what is valid.
#pragma once

#include <fleetcast/core/protocol/command.hpp>
#include <fleetcast/core/protocol/pkdk.hpp>

#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

// The documented limits of the reference page.
inline constexpr std::size_t max_passthrough_data_chars = 4096;
inline constexpr std::int64_t min_cache_time_s = 1;
inline constexpr std::int64_t max_cache_time_s = 7'776'000;
// fleetcast's own bound on a key: far above any real key, small enough that a
// corrupt line cannot pass for a device.
inline constexpr std::size_t max_key_bytes = 1024;

struct validation_error {
  boost::system::error_code code;  // api_errc (seed's number) or command_errc
  std::string field;               // the API's field name, e.g. "cacheTime"
  std::string message;             // what is wrong, naming the field and the rule
};

// Every rule the command breaks, in the order the platform checks them; the
// first is the code the platform would answer. Empty when the command is valid.
std::vector<validation_error> validate_command(const command& cmd);

// The device's problem, if any: an empty, over-long or non-UTF-8 key, or a
// gateway half given. With `plain`, also says whether all four keys need no
// JSON escaping, from the same look at each byte (pkdk_view::plain).
std::optional<validation_error> validate_device(const pkdk_view& device, bool* plain = nullptr);

// 5311 for an empty list, 5312 for one longer than `limit` (0 = no limit).
std::optional<validation_error> validate_device_count(std::size_t count, std::size_t limit);

// Unicode code points in a UTF-8 string (invalid bytes count one each): what
// the reference page's "length" of data is taken to mean.
std::size_t utf8_length(std::string_view s) noexcept;

// True when `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace fleetcast
