// JSON string output: quoting and escaping into a caller's reused buffer.
#pragma once

#include <cstddef>
#include <cstring>
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

// One look at a key's bytes for both questions asked of it: is it ASCII
// (then it is valid UTF-8 without more ado), and does it need JSON escaping.
struct key_scan {
  bool ascii = true;
  bool plain = true;  // no quote, backslash or control character
};
key_scan scan_key(std::string_view s) noexcept;

// Raw writes for the per-device hot paths (a result line, an entry of
// result.json, a request's device): the caller makes room once for a whole
// record (append_bounded) and writes into it without a capacity check per
// piece.

// The most bytes write_json_string writes for a string of n bytes (the
// quotes, and \u00XX for every byte).
constexpr std::size_t json_string_bound(std::size_t n) noexcept {
  return 6 * n + 2;
}

// Writes `s` as a JSON string literal at `w`, which has room for
// json_string_bound(s.size()) bytes; returns the end.
char* write_json_string(char* w, std::string_view s) noexcept;

inline char* write_bytes(char* w, std::string_view s) noexcept {
  if (!s.empty()) std::memcpy(w, s.data(), s.size());
  return w + s.size();
}

// A string known to need no escaping (scan_key said plain), quoted.
inline char* write_plain_json_string(char* w, std::string_view s) noexcept {
  *w++ = '"';
  w = write_bytes(w, s);
  *w++ = '"';
  return w;
}

// A JSON string literal, or null for an empty string.
inline char* write_json_string_or_null(char* w, std::string_view s) noexcept {
  return s.empty() ? write_bytes(w, "null") : write_json_string(w, s);
}

// Grows `out` by at most `bound` bytes written by write(char* at) -> end.
template <typename Write>
void append_bounded(std::string& out, std::size_t bound, Write&& write) {
  const std::size_t at = out.size();
  out.resize(at + bound);
  char* const end = write(out.data() + at);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

}  // namespace fleetcast
