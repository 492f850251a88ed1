// The daemon's configuration (see daemon_config.hpp).
#include "core/daemon/daemon_config.hpp"

#include "core/job/config_reader.hpp"

namespace fleetcast {

namespace dom = simdjson::dom;

const endpoint_limits& daemon_config::limits_for(std::string_view endpoint_url) const {
  std::string url(endpoint_url);
  while (!url.empty() && url.back() == '/') url.pop_back();
  for (const auto& [key, limits] : endpoints) {
    std::string k = key;
    while (!k.empty() && k.back() == '/') k.pop_back();
    if (k == url) return limits;
  }
  return default_limits;
}

bool is_loopback_listen(std::string_view listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos) return false;
  const auto host = listen.substr(0, colon);
  return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

namespace {

void read_limits(detail::config_reader& r, dom::element e, const std::string& field,
                 endpoint_limits& out) {
  dom::object o;
  if (!r.object(e, field, {"connections", "requests_per_second", "burst"}, o)) return;
  r.integer(o, field, "connections", out.connections, 1, 4096);
  r.number(o, field, "requests_per_second", out.requests_per_second, 0, 1e9);
  r.number(o, field, "burst", out.burst, 1, 1e9);
}

}  // namespace

daemon_config_result parse_daemon_config(std::string_view text) {
  daemon_config_result result;
  auto& errors = result.errors;
  dom::parser parser;
  simdjson::padded_string padded;
  dom::element root;
  if (!detail::parse_config_root(text, parser, padded, root, errors)) return result;
  detail::config_reader r(errors, {});
  daemon_config c;
  dom::object top;
  if (!r.object(
          root, "",
          {"max_jobs", "admin_listen", "admin_token_file", "admin_hosts", "poll_interval_ms",
           "drain_timeout_s", "progress_log_interval_s", "fsync", "default_endpoint", "endpoints"},
          top)) {
    return result;
  }
  r.integer(top, "", "max_jobs", c.max_jobs, 1, 1024);
  r.string(top, "", "admin_listen", c.admin_listen);
  if (!c.admin_listen.empty() && c.admin_listen.rfind(':') == std::string::npos) {
    r.fail("", "admin_listen",
           fmt::format("\"{}\" is not HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464, [::]:9464)",
                       c.admin_listen));
  }
  r.string(top, "", "admin_token_file", c.admin_token_file);
  r.strings(top, "admin_hosts", c.admin_hosts);
  for (const auto& h : c.admin_hosts) {
    if (h.empty() || h.find_first_of(":/[] ") != std::string::npos)
      r.fail("", "admin_hosts", fmt::format("\"{}\" is not a host name (no port, no scheme)", h));
  }
  r.integer(top, "", "poll_interval_ms", c.poll_interval_ms, 10, 3'600'000);
  r.integer(top, "", "drain_timeout_s", c.drain_timeout_s, 0, 86'400);
  r.integer(top, "", "progress_log_interval_s", c.progress_log_interval_s, 0, 86'400);
  dom::element e;
  if (top["fsync"].get(e) == simdjson::SUCCESS) {
    std::string_view mode;
    dom::object o;
    if (e.get_string().get(mode) == simdjson::SUCCESS) {
      if (mode == "every_batch") {
        c.fsync = daemon_config::fsync_mode::every_batch;
      } else if (mode == "none") {
        c.fsync = daemon_config::fsync_mode::none;
      } else {
        r.fail("", "fsync", "must be \"every_batch\", \"none\" or {\"interval_ms\": N}");
      }
    } else if (r.object(e, "fsync", {"interval_ms"}, o)) {
      c.fsync = daemon_config::fsync_mode::interval;
      r.integer(o, "fsync", "interval_ms", c.fsync_interval_ms, 1, 3'600'000);
    }
  }
  if (top["default_endpoint"].get(e) == simdjson::SUCCESS)
    read_limits(r, e, "default_endpoint", c.default_limits);
  if (top["endpoints"].get(e) == simdjson::SUCCESS) {
    dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) {
      r.fail("", "endpoints", "must be an object keyed by endpoint URL");
    } else {
      for (auto [url, limits] : o) {
        endpoint_limits l = c.default_limits;
        read_limits(r, limits, fmt::format("endpoints.{}", url), l);
        c.endpoints[std::string(url)] = l;
      }
    }
  }
  if (errors.empty()) result.config = std::move(c);
  return result;
}

}  // namespace fleetcast
