#include <fleetcast/core/job/url.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace fleetcast {

namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

void parse_authority(std::string_view text, url_authority& out,
                     std::vector<std::string>& problems) {
  out = {};
  std::string_view port_text;
  bool port_given = false;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      problems.emplace_back("has an unclosed '[' in the host");
      return;
    }
    out.host = std::string(text.substr(1, close - 1));
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        problems.emplace_back("has text after the IPv6 address");
      } else {
        port_text = after.substr(1);
        port_given = true;
      }
    }
  } else {
    const std::size_t colon = text.rfind(':');
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      port_given = true;
    }
  }
  if (out.host.empty()) problems.emplace_back("has no host");
  if (!port_given) return;
  if (port_text.empty()) {
    problems.emplace_back("has an empty port");
    return;
  }
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      port = 0;
      break;
    }
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) {
    problems.emplace_back("has a port that is not a number 1-65535");
  } else {
    out.port = static_cast<std::uint16_t>(port);
  }
}

std::optional<std::string> parse_endpoint(std::string_view url, endpoint_config& out) {
  out = {};
  out.url = std::string(url);
  std::vector<std::string> problems;
  auto result = [&]() -> std::optional<std::string> {
    if (problems.empty()) return std::nullopt;
    return fmt::format("{}", fmt::join(problems, "; "));
  };
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    out.tls = true;
    out.port = 443;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    out.tls = false;
    out.port = 80;
    rest.remove_prefix(7);
  } else {
    problems.emplace_back("must start with https:// (or http:// for a loopback rehearsal)");
    const auto scheme_end = rest.find("://");
    if (scheme_end == std::string_view::npos) return result();
    rest.remove_prefix(scheme_end + 3);  // the rest may have problems of its own
  }
  if (rest.find_first_of("?#@") != std::string_view::npos) {
    problems.emplace_back("must not contain a user name, a query or a fragment");
  }
  const std::size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (prefix.ends_with('/')) prefix.remove_suffix(1);
    out.path_prefix = std::string(prefix);
  }
  url_authority authority;
  parse_authority(rest.substr(0, slash), authority, problems);
  out.host = std::move(authority.host);
  if (authority.port) out.port = *authority.port;
  // The whole API URL pasted: its path would be sent twice.
  static constexpr std::string_view api_path = "/v2/binding/enduserapi";
  if (const auto at = lowercase(out.path_prefix).find(lowercase(api_path));
      at != std::string::npos) {
    const std::string base = out.url.substr(0, out.url.size() - rest.size() + slash) +
                             out.path_prefix.substr(0, at);
    problems.push_back(fmt::format(
        "carries the API's own path ({}...): give the address it starts from, \"{}\" (fleetcast "
        "adds {}/batchControlDevice)",
        api_path, base, api_path));
  }
  return result();
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  std::string lower = lowercase(host);
  while (lower.ends_with('.')) lower.pop_back();
  if (lower == "localhost") return true;
  if (!lower.starts_with("127.")) return false;
  // a dotted quad: four numbers 0-255
  unsigned parts = 0;
  std::size_t i = 0;
  while (i <= lower.size()) {
    const auto dot = std::min(lower.find('.', i), lower.size());
    const auto part = std::string_view(lower).substr(i, dot - i);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(part)) > 255)
      return false;
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

std::optional<std::string> parse_amqp_url(std::string_view url, amqp_acks_config& out) {
  out.url = std::string(url);
  std::vector<std::string> problems;
  std::string_view rest = url;
  if (rest.starts_with("amqps://")) {
    rest.remove_prefix(8);
  } else {
    problems.emplace_back(rest.starts_with("amqp://")
                              ? "must be amqps:// (the subscription takes TLS only)"
                              : "must start with amqps://");
    const auto scheme_end = rest.find("://");
    if (scheme_end == std::string_view::npos) return fmt::format("{}", fmt::join(problems, "; "));
    rest.remove_prefix(scheme_end + 3);
  }
  if (rest.find_first_of("?#@") != std::string_view::npos)
    problems.emplace_back("must not contain a user name, a query or a fragment");
  const std::size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    std::string_view vhost = rest.substr(slash + 1);
    while (vhost.ends_with('/')) vhost.remove_suffix(1);
    if (!vhost.empty()) out.vhost = std::string(vhost);
  }
  url_authority authority;
  parse_authority(rest.substr(0, slash), authority, problems);
  out.host = std::move(authority.host);
  out.port = authority.port.value_or(5671);
  if (problems.empty()) return std::nullopt;
  return fmt::format("{}", fmt::join(problems, "; "));
}

bool is_queue_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fleetcast
