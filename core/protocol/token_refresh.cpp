// The refresh endpoint's request and answer (see token_refresh.hpp).
#include "core/protocol/token_refresh.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include <simdjson.h>

#include <algorithm>

namespace fleetcast {

namespace dom = simdjson::dom;

std::string refresh_target(std::string_view path_prefix, std::string_view refresh_token) {
  std::string out;
  out.reserve(path_prefix.size() + refresh_token_path.size() + 16 + refresh_token.size() * 3);
  out.append(path_prefix).append(refresh_token_path).append("?refreshToken=");
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char ch : refresh_token) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

refresh_answer read_refresh_answer(int http_status, std::string_view body) {
  refresh_answer a;
  if (http_status != 200) {
    a.error = "HTTP " + std::to_string(http_status);
    return a;
  }
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(body);
  std::int64_t code = 0;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS ||
      root["code"].get_int64().get(code) != simdjson::SUCCESS) {
    a.error = "the answer is not the API's JSON";
    return a;
  }
  if (code != 200) {
    a.code = code;
    std::string_view msg;
    if (root["msg"].get_string().get(msg) != simdjson::SUCCESS) msg = "";
    // The endpoint's own text: bounded, valid, without an echoed token.
    a.error = "code " + std::to_string(code) + (msg.empty() ? "" : " (" + outside_text(msg) + ")");
    if (code == 5032) a.error += ": the refresh token has expired or is not valid";
    return a;
  }
  std::string_view access, refresh;
  if (root["data"]["accessToken"]["token"].get_string().get(access) != simdjson::SUCCESS ||
      access.empty()) {
    a.error = "the answer has no data.accessToken.token";
    return a;
  }
  a.access_token = access;
  if (root["data"]["refreshToken"]["token"].get_string().get(refresh) == simdjson::SUCCESS)
    a.refresh_token = refresh;
  std::int64_t t = 0;
  if (root["data"]["accessToken"]["expirationTime"].get_int64().get(t) == simdjson::SUCCESS)
    a.access_expires_s = t;
  if (root["data"]["refreshToken"]["expirationTime"].get_int64().get(t) == simdjson::SUCCESS)
    a.refresh_expires_s = t;
  return a;
}

namespace {

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4 + 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace

namespace {

std::optional<std::int64_t> jwt_claim(std::string_view token, std::string_view claim) {
  if (token.starts_with("Bearer ")) token.remove_prefix(7);
  const auto a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = token.find('.', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  const auto payload = base64url_decode(token.substr(a + 1, b - a - 1));
  if (!payload) return std::nullopt;
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(*payload);
  std::int64_t v = 0;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS ||
      root[claim].get_int64().get(v) != simdjson::SUCCESS)
    return std::nullopt;
  return v;
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

std::optional<std::int64_t> jwt_expiry_s(std::string_view token) {
  return jwt_claim(token, "exp");
}

std::optional<std::int64_t> jwt_issued_s(std::string_view token) {
  return jwt_claim(token, "iat");
}

std::optional<std::int64_t> parse_http_date(std::string_view t) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, fixed positions.
  if (t.size() != 29 || t[3] != ',' || t[4] != ' ' || t.substr(26) != "GMT") return std::nullopt;
  const auto num = [&](std::size_t at, std::size_t n) -> std::optional<unsigned> {
    unsigned v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(t[i] - '0');
    }
    return v;
  };
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const auto mpos = months.find(t.substr(8, 3));
  const auto day = num(5, 2), year = num(12, 4), h = num(17, 2), mi = num(20, 2), s = num(23, 2);
  if (mpos == std::string_view::npos || mpos % 3 || !day || !year || !h || !mi || !s || *day < 1 ||
      *day > 31 || *h > 23 || *mi > 59 || *s > 60)
    return std::nullopt;
  const auto m = static_cast<unsigned>(mpos / 3 + 1);
  return days_from_civil(*year, m, *day) * 86400 + *h * 3600 + *mi * 60 + *s;
}

std::int64_t refresh_due_s(std::int64_t obtained_s, std::int64_t expires_s) noexcept {
  const std::int64_t life = std::max<std::int64_t>(0, expires_s - obtained_s);
  return expires_s - std::min<std::int64_t>(300, life / 4);
}

}  // namespace fleetcast
