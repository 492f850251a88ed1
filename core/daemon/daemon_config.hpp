// daemon_config: what `fleetcast daemon --config FILE` reads. Every field is
// optional; an absent file means all defaults. See
// config/daemon.example.json for a documented example.
#pragma once

#include <fleetcast/core/output/fsync_policy.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

// What one endpoint (one platform account per token) allows, shared by every
// job the daemon runs against it.
struct endpoint_limits {
  std::uint32_t connections = 8;   // connections open at once, over all jobs
  double requests_per_second = 0;  // the account's request rate (0 = no limit)
  double burst = 5;
};

struct daemon_config {
  std::uint32_t max_jobs = 4;                   // jobs run at once
  std::string admin_listen = "127.0.0.1:9464";  // /metrics, /healthz, /jobs; "" = off
  // The bearer token that changes need (cancel, resume) on the admin port;
  // empty: changes only from loopback clients (core/daemon/admin_access.hpp).
  std::string admin_token_file;
  // Host names (besides IP literals and localhost) the admin port answers
  // job data and changes to without the token: the names operators browse
  // it by. Any other name in a Host header may be a page's DNS rebinding.
  std::vector<std::string> admin_hosts;
  std::uint32_t poll_interval_ms = 1000;       // the scan of incoming/ besides inotify
  std::uint32_t drain_timeout_s = 30;          // SIGTERM: jobs may finish for this long
  std::uint32_t progress_log_interval_s = 60;  // a job_progress log line per job (0 = none)
  using fsync_mode = fsync_policy::mode;
  fsync_mode fsync = fsync_mode::every_batch;
  std::uint32_t fsync_interval_ms = 1000;
  fsync_policy fsync_for_jobs() const { return {fsync, fsync_interval_ms}; }
  endpoint_limits default_limits;
  std::map<std::string, endpoint_limits> endpoints;  // by endpoint URL

  const endpoint_limits& limits_for(std::string_view endpoint_url) const;
};

struct daemon_config_result {
  std::optional<daemon_config> config;
  std::vector<std::string> errors;  // "field: what is wrong"
};

daemon_config_result parse_daemon_config(std::string_view text);

// True for a loopback host:port ("127.0.0.1:9464", "[::1]:9464",
// "localhost:9464"): the admin port has no authentication, so it must not
// listen anywhere else.
bool is_loopback_listen(std::string_view listen);

}  // namespace fleetcast
