// JSON string escaping with a table lookup per byte and bulk copies of runs.
#include "core/protocol/json_escape.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace fleetcast {
namespace {

constexpr std::array<bool, 256> make_escape_table() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}
constexpr auto needs_escape = make_escape_table();

// Whether a word has a byte below 0x20, a '"' or a '\\' (the exact answer
// for the word as a whole, from the classic has-zero-byte bit tricks).
inline bool word_needs_escape(std::uint64_t x) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  const auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  const std::uint64_t below_space = (x - ones * 0x20) & ~x & highs;
  return (below_space | has_zero(x ^ (ones * '"')) | has_zero(x ^ (ones * '\\'))) != 0;
}

inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

inline std::uint32_t load4(const char* p) noexcept {
  std::uint32_t x;
  std::memcpy(&x, p, 4);
  return x;
}

}  // namespace

// Eight bytes at a time; the last word overlaps the one before instead of
// copying a short tail (keys are short and nearly never need escaping).
key_scan scan_key(std::string_view s) noexcept {
  const char* p = s.data();
  const std::size_t n = s.size();
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  if (n >= 8) {
    std::uint64_t high = 0;
    bool escape = false;
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      const auto x = load8(p + i);
      high |= x;
      escape = escape || word_needs_escape(x);
    }
    const auto last = load8(p + n - 8);
    return {((high | last) & highs) == 0, !escape && !word_needs_escape(last)};
  }
  std::uint64_t x = 0x4141414141414141ULL;  // 'A' in the bytes past the end: plain ASCII
  if (n >= 4) {                             // two overlapping 4-byte loads
    x = load4(p) | (std::uint64_t{load4(p + n - 4)} << 32);
  } else {
    for (std::size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<unsigned char>(p[i]);
  }
  return {(x & highs) == 0, !word_needs_escape(x)};
}

char* write_json_string(char* w, std::string_view s) noexcept {
  *w++ = '"';
  if (scan_key(s).plain) {
    w = write_bytes(w, s);
    *w++ = '"';
    return w;
  }
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!needs_escape[c]) {
      *w++ = ch;
      continue;
    }
    *w++ = '\\';
    switch (c) {
      case '"':
        *w++ = '"';
        break;
      case '\\':
        *w++ = '\\';
        break;
      case '\n':
        *w++ = 'n';
        break;
      case '\r':
        *w++ = 'r';
        break;
      case '\t':
        *w++ = 't';
        break;
      case '\b':
        *w++ = 'b';
        break;
      case '\f':
        *w++ = 'f';
        break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        *w++ = 'u';
        *w++ = '0';
        *w++ = '0';
        *w++ = hex[c >> 4];
        *w++ = hex[c & 0xF];
      }
    }
  }
  *w++ = '"';
  return w;
}

void append_json_string(std::string& out, std::string_view s) {
  const bool plain = scan_key(s).plain;
  append_bounded(out, plain ? s.size() + 2 : json_string_bound(s.size()), [&](char* w) {
    if (!plain) return write_json_string(w, s);
    *w++ = '"';
    w = write_bytes(w, s);
    *w++ = '"';
    return w;
  });
}

}  // namespace fleetcast
