// json_syntax: finds where and why a JSON text is malformed, for messages
// that name the line and column (simdjson reports only that it failed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

struct json_syntax_error {
  std::uint64_t line = 1;    // 1-based
  std::uint64_t column = 1;  // 1-based, in bytes
  std::string message;
};

// The first syntax error of `text` (RFC 8259), or nullopt when it is valid.
// Nesting deeper than `max_depth` is an error too.
std::optional<json_syntax_error> find_json_syntax_error(std::string_view text, int max_depth = 256);

}  // namespace fleetcast
