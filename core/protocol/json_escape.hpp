// JSON string output: quoting and escaping into a caller's reused buffer.
#pragma once

#include <string>
#include <string_view>

namespace fleetcast {

// Appends `s` to `out` as a JSON string literal (with the quotes). Quotes,
// backslashes and control characters are escaped; other bytes, UTF-8 included,
// pass through unchanged (callers validate UTF-8 where input enters).
void append_json_string(std::string& out, std::string_view s);

// Appends a JSON string literal, or `null` when `s` is empty.
inline void append_json_string_or_null(std::string& out, std::string_view s) {
  if (s.empty()) {
    out += "null";
  } else {
    append_json_string(out, s);
  }
}

}  // namespace fleetcast
