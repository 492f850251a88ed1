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

// Whether `s` needs no escaping, eight bytes at a time (device keys nearly
// never need it: they are then copied in one piece).
bool json_string_is_plain(std::string_view s) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    if (word_needs_escape(x)) return false;
  }
  if (n == 0) return true;                  // (an empty view may have no data pointer at all)
  std::uint64_t x = 0x4141414141414141ULL;  // 'A' in the bytes past the end
  std::memcpy(&x, p, n);
  return !word_needs_escape(x);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  if (json_string_is_plain(s)) {
    const std::size_t at = out.size();
    out.resize(at + s.size() + 2);  // (within capacity once the buffer is warm)
    char* w = out.data() + at;
    w[0] = '"';
    if (!s.empty()) std::memcpy(w + 1, s.data(), s.size());
    w[s.size() + 1] = '"';
    return;
  }
  out.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!needs_escape[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace fleetcast
