#include "core/job/proxy.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include <fleetcast/core/job/url.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace fleetcast {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::uint32_t> ipv4(std::string_view s) {
  std::uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    unsigned octet = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), octet);
    if (ec != std::errc() || octet > 255 || p == s.data()) return std::nullopt;
    value = value << 8 | octet;
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    if (part < 3) {
      if (s.empty() || s[0] != '.') return std::nullopt;
      s.remove_prefix(1);
    }
  }
  if (!s.empty()) return std::nullopt;
  return value;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string proxy_url::display() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

std::optional<std::string> parse_proxy_url(std::string_view text, proxy_url& out) {
  out = {};
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    return "an https:// proxy (TLS to the proxy) is not supported: use http://host:port (the "
           "tunnel to the endpoint is TLS all the same)";
  }
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return "must be http://[user:password@]host[:port]";
  }  // no scheme: http, as curl takes it
  while (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return "must not have a path";
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    out.user = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) out.password = percent_decode(userinfo.substr(colon + 1));
    rest.remove_prefix(at + 1);
  }
  url_authority authority;
  std::vector<std::string> problems;
  parse_authority(rest, authority, problems);
  if (!problems.empty()) return problems.front();
  out.host = std::move(authority.host);
  if (authority.port) out.port = *authority.port;
  return std::nullopt;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host) {
  while (!no_proxy.empty()) {
    const auto comma = no_proxy.find(',');
    auto entry = trim(no_proxy.substr(0, comma));
    no_proxy = comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (entry.starts_with('[') && entry.ends_with(']')) entry = entry.substr(1, entry.size() - 2);
    if (const auto slash = entry.find('/'); slash != std::string_view::npos) {
      const auto net = ipv4(entry.substr(0, slash));
      const auto addr = ipv4(host);
      unsigned bits = 33;
      std::from_chars(entry.data() + slash + 1, entry.data() + entry.size(), bits);
      if (net && addr && bits <= 32) {
        const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
        if ((*net & mask) == (*addr & mask)) return true;
      }
      continue;
    }
    if (entry.starts_with('.')) entry.remove_prefix(1);
    if (iequal(host, entry)) return true;
    if (host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
        iequal(host.substr(host.size() - entry.size()), entry) && !ipv4(host))
      return true;
  }
  return false;
}

proxy_choice choose_proxy(const endpoint_config& endpoint,
                          const std::optional<std::string>& job_proxy, const proxy_environment& env,
                          std::string& error) {
  proxy_choice c;
  std::string_view url, source;
  if (job_proxy) {
    if (*job_proxy == "direct") {
      c.why = "the job's proxy is \"direct\"";
      return c;
    }
    url = *job_proxy;
    source = "proxy";
  } else {
    url = endpoint.tls ? env.https_proxy : env.http_proxy;
    source = endpoint.tls ? env.https_source : env.http_source;
    if (url.empty()) {
      c.why = "no proxy variable is set";
      return c;
    }
  }
  if (no_proxy_matches(env.no_proxy, endpoint.host)) {
    c.why = fmt::format("NO_PROXY matches {}", endpoint.host);
    return c;
  }
  proxy_url p;
  if (auto problem = parse_proxy_url(url, p)) {
    error = fmt::format("{}: {}", source, *problem);  // the URL itself may hold a password
    return c;
  }
  // From here on the credentials are sent: an echo of them is redacted.
  secret_registry::process().add_credentials(p.user, p.password);
  c.proxy = std::move(p);
  c.why = std::string(source);
  return c;
}

std::string connect_request(const proxy_url& proxy, std::string_view host, std::uint16_t port) {
  const auto target = host.find(':') != std::string_view::npos ? fmt::format("[{}]:{}", host, port)
                                                               : fmt::format("{}:{}", host, port);
  std::string r = fmt::format("CONNECT {} HTTP/1.1\r\nHost: {}\r\n", target, target);
  if (!proxy.user.empty()) {
    r += "Proxy-Authorization: Basic ";
    r += base64(proxy.user + ":" + proxy.password);
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

std::string tunnel_refusal(const proxy_url& proxy, std::string_view target, int status,
                           std::string_view reason) {
  if (status >= 200 && status < 300) return {};
  std::string hint;
  if (status == 407 || status == 401) {  // 407 is the standard; some proxies answer 401
    hint = proxy.user.empty()
               ? ": the proxy wants a user and password (http://user:password@host:port)"
               : ": the proxy refused the user and password";
  } else if (status == 403) {
    hint = ": the proxy does not allow this destination or port";
  }
  // The reason phrase is the proxy's own text: bounded, valid UTF-8, and
  // without the credentials a proxy may echo.
  return fmt::format("the proxy {} refused the tunnel to {}: HTTP {} {}{}", proxy.display(), target,
                     status, outside_text(reason), hint);
}

std::string base64(std::string_view bytes) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto v = static_cast<unsigned char>(bytes[i]) << 16 |
                   static_cast<unsigned char>(bytes[i + 1]) << 8 |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += table[v >> 6 & 63];
    out += table[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const auto v = static_cast<unsigned char>(bytes[i]) << 16 |
                   (two ? static_cast<unsigned char>(bytes[i + 1]) << 8 : 0);
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += two ? table[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace fleetcast
