// job_checks (see job_checks.hpp) and validate().
#include "core/job/job_checks.hpp"

#include <fleetcast/core/job/time_text.hpp>
#include <fleetcast/core/job/url.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include "core/job/proxy.hpp"
#include "core/protocol/validation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace fleetcast {

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), is_name_char);
}

namespace {

struct checker {
  std::vector<job_error>& errors;
  void error(std::string field, std::string message, std::optional<int> code = std::nullopt) {
    errors.push_back({std::move(field), std::move(message), code, 0, 0});
  }
  // The parser's messages, word for word.
  template <typename T>
  void range(std::string field, T value, bounds<std::int64_t> b) {
    const auto v = static_cast<std::int64_t>(value);
    if (!b.holds(v)) error(std::move(field), fmt::format("{} is outside {}..{}", v, b.min, b.max));
  }
  void range(std::string field, double v, bounds<double> b) {
    if (!b.holds(v)) error(std::move(field), fmt::format("{} is outside {}..{}", v, b.min, b.max));
  }
};

void check_fields(const job& j, checker& c) {
  if (!is_valid_name(j.name))
    c.error("name", "may hold only letters, digits, '-', '_' and '.' (at most 128)");
  if (j.endpoint.url.empty()) {
    c.error("endpoint", "is required");
  } else {
    endpoint_config parsed;
    if (auto problem = parse_endpoint(j.endpoint.url, parsed)) {
      c.error("endpoint", "\"" + j.endpoint.url + "\" " + *problem);
    } else if (parsed.host != j.endpoint.host || parsed.port != j.endpoint.port ||
               parsed.tls != j.endpoint.tls || parsed.path_prefix != j.endpoint.path_prefix) {
      c.error("endpoint",
              "its host, port, scheme or path differ from its url (set them with "
              "parse_endpoint)");
    }
  }
  const auto& a = j.auth;
  if (a.kind == auth_config::source::token_file && a.token_file.empty())
    c.error("auth.token_file", "must not be empty");
  if (a.kind == auth_config::source::token_env && a.token_env.empty())
    c.error("auth.token_env", "must not be empty");
  if (a.kind == auth_config::source::token_command && a.token_command.empty())
    c.error("auth.token_command", "must be a non-empty array of strings (argv)");
  c.range("auth.command_timeout_ms", a.command_timeout_ms, auth_config::command_timeout_ms_range);
  for (auto& v : validate_command(j.cmd)) {
    const int code =
        v.code.category().name() == std::string_view("fleetcast.api") ? v.code.value() : 0;
    c.error("command." + v.field, v.message, code ? std::optional<int>(code) : std::nullopt);
  }
  c.range("batch.max_devices", j.batch.max_devices, batch_config::max_devices_range);
  c.range("rate.requests_per_second", j.rate.requests_per_second,
          rate_config::requests_per_second_range);
  c.range("rate.devices_per_second", j.rate.devices_per_second,
          rate_config::devices_per_second_range);
  c.range("rate.burst", j.rate.burst, rate_config::burst_range);
  if (j.proxy && *j.proxy != "direct") {
    proxy_url parsed;
    if (auto problem = parse_proxy_url(*j.proxy, parsed)) c.error("proxy", *problem);
  }
  c.range("connections", j.connections, job::connections_range);
  c.range("pipeline_depth", j.pipeline_depth, job::pipeline_depth_range);
  c.range("max_answer_bytes", j.max_answer_bytes, job::max_answer_bytes_range);
  c.range("timeouts.connect_ms", j.timeouts.connect_ms, timeout_config::connect_ms_range);
  c.range("timeouts.request_ms", j.timeouts.request_ms, timeout_config::request_ms_range);
  c.range("timeouts.unreachable_s", j.timeouts.unreachable_s, timeout_config::unreachable_s_range);
  c.range("retry.max_retry_after_s", j.retry.max_retry_after_s,
          retry_config::max_retry_after_s_range);
  c.range("retry.max_attempts", j.retry.max_attempts, retry_config::max_attempts_range);
  c.range("retry.base_delay_ms", j.retry.base_delay_ms, retry_config::base_delay_ms_range);
  c.range("retry.max_delay_ms", j.retry.max_delay_ms, retry_config::max_delay_ms_range);
  const auto& r = j.rollout;
  c.range("rollout.canary_wait_s", r.canary_wait_s, rollout_config::canary_wait_s_range);
  c.range("rollout.max_per_gateway", r.max_per_gateway, rollout_config::max_per_gateway_range);
  std::uint32_t failure_kinds = 0;
  for (std::size_t i = 0; i < outcome_reason_count; ++i)
    if (status_of(static_cast<outcome_reason>(i)) == device_status::failed)
      failure_kinds |= 1u << i;
  const std::uint32_t delivery_kinds =
      rollout_config::abort_on_delivery_failed | rollout_config::abort_on_no_ack;
  if ((r.abort_on & (failure_kinds | delivery_kinds)) == 0)
    c.error("rollout.abort_on", "must be a non-empty array of failure kinds");
  if (r.ramp.start_rps != 0) {
    c.range("rollout.ramp.start_rps", r.ramp.start_rps, ramp_config::start_rps_range);
    c.range("rollout.ramp.factor", r.ramp.factor, ramp_config::factor_range);
    c.range("rollout.ramp.every_devices", r.ramp.every_devices, ramp_config::every_devices_range);
  }
  c.range("rollout.canary_devices", r.canary_devices, rollout_config::canary_devices_range);
  c.range("rollout.abort_failure_ratio", r.abort_failure_ratio,
          rollout_config::abort_failure_ratio_range);
  c.range("rollout.abort_min_devices", r.abort_min_devices,
          rollout_config::abort_min_devices_range);
}

// "3 h 20 min", "2 days 4 h", "45 s": a span as an operator reads it.
std::string describe_span(std::int64_t s) {
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{} min", s / 60);
  if (s < 2 * 86400) return fmt::format("{} h {} min", s / 3600, s % 3600 / 60);
  return fmt::format("{} days {} h", s / 86400, s % 86400 / 3600);
}

}  // namespace

void check_job(const job& j, std::vector<job_error>& errors, job_checks which) {
  checker c{errors};
  if (which == job_checks::all) check_fields(j, c);
  if (j.retry.max_delay_ms < j.retry.base_delay_ms)
    c.error("retry.max_delay_ms", "must be at least retry.base_delay_ms");
  if (j.rollout.ramp.start_rps > 0 && j.rate.requests_per_second <= 0)
    c.error("rollout.ramp", "needs rate.requests_per_second, the rate it ramps up to");
  if (!j.endpoint.host.empty() && !j.endpoint.tls && !j.tls.allow_plain_http &&
      !is_loopback_host(j.endpoint.host))
    c.error("endpoint",
            fmt::format("\"{}\" is plain http:// to a host that is not loopback: the token and "
                        "the command would cross the network unencrypted; use https://, or set "
                        "tls.allow_plain_http to true if that is really meant",
                        j.endpoint.url));
  if (j.rollout.not_before && j.rollout.not_after && *j.rollout.not_after <= *j.rollout.not_before)
    c.error("rollout.not_after", "must be later than rollout.not_before");
  const auto& r = j.rollout;
  const std::uint32_t delivery_kinds =
      rollout_config::abort_on_delivery_failed | rollout_config::abort_on_no_ack;
  if (r.abort_on != ~0u && (r.abort_on & delivery_kinds) && !j.acks.enabled())
    c.error("rollout.abort_on",
            "delivery_failed and no_ack need acks (where acknowledgements come from)");
  if (r.canary_wait_for_ack && !j.acks.enabled())
    c.error("rollout.canary_wait_for", "\"ack\" needs acks (where acknowledgements come from)");
  if (r.canary_wait_for_ack && r.canary_devices == 0)
    c.error("rollout.canary_wait_for", "\"ack\" needs rollout.canary_devices");
  if (!r.phases.empty() && (r.canary_devices > 0 || r.canary_wait_s > 0 || r.canary_wait_for_ack))
    c.error("rollout.phases",
            "give the canary as the first phase, or canary_devices (canary_wait_s, "
            "canary_wait_for) alone: not both");
  for (std::size_t k = 0; k < r.phases.size(); ++k) {
    if (r.phases[k].gate.wait_for_ack && !j.acks.enabled())
      c.error(fmt::format("rollout.phases[{}].gate.wait_for", k),
              "\"ack\" needs acks (where acknowledgements come from)");
  }
}

std::vector<job_error> validate(const job& j) {
  std::vector<job_error> errors;
  check_job(j, errors, job_checks::all);
  return errors;
}

window_verdict check_window(const job& j, std::int64_t now_s) {
  window_verdict v;
  const auto& r = j.rollout;
  if (r.not_after && *r.not_after <= now_s) {
    v.error = job_error{
        "rollout.not_after",
        fmt::format("the window ended at {} ({} ago): a run would send nothing; "
                    "move it, or remove it",
                    format_iso8601_utc(*r.not_after), describe_span(now_s - *r.not_after)),
        std::nullopt, 0, 0};
  } else if (r.not_before && *r.not_before - now_s > 24 * 3600) {
    v.notice = fmt::format("the window opens at {}, in {}: a run waits until then",
                           format_iso8601_utc(*r.not_before), describe_span(*r.not_before - now_s));
  }
  return v;
}

std::string check_window_now(job_parse_result& parsed) {
  const job* seen = parsed.job ? &*parsed.job : parsed.partial ? &*parsed.partial : nullptr;
  if (!seen) return {};
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  auto w = check_window(*seen, now_s);
  if (!w.error) return std::move(w.notice);
  parsed.errors.push_back(std::move(*w.error));
  if (parsed.job) parsed.partial = std::exchange(parsed.job, std::nullopt);
  return {};
}

}  // namespace fleetcast
