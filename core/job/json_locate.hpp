// json_locate: where a field of a JSON text is, for messages that name the
// line and column of a field's mistake (simdjson's DOM keeps no positions).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace fleetcast {

struct json_position {
  std::uint64_t line = 1;    // 1-based
  std::uint64_t column = 1;  // 1-based, in bytes
};

// The position of the key of the dotted field path `path` ("command.qos")
// in a valid JSON text, or of its deepest ancestor that is there (a missing
// "devices.file" points at "devices"); nullopt when not even the first part
// is there. A key repeated in one object: its first occurrence.
std::optional<json_position> locate_json_field(std::string_view text, std::string_view path);

}  // namespace fleetcast
