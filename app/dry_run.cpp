// The dry run (see dry_run.hpp).
#include "app/dry_run.hpp"
#include "app/say.hpp"

#include "app/job_load.hpp"
#include "app/library_parts.hpp"
#include "core/output/rollout_plan.hpp"
#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include <sys/resource.h>

namespace fleetcast::app {
namespace {

std::string bytes(std::uint64_t n) {
  if (n < 10 * 1024) return fmt::format("{} B", n);
  if (n < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1024 * 1024));
}

std::string_view type_name(std::int64_t t) {
  switch (t) {
    case 1:
      return "passthrough";
    case 2:
      return "property";
    case 3:
      return "service";
  }
  return "?";
}

std::string auth_source(const auth_config& a) {
  switch (a.kind) {
    case auth_config::source::token_file:
      return "token_file " + a.token_file;
    case auth_config::source::token_env:
      return "token_env " + a.token_env;
    case auth_config::source::token_command:
      return "token_command " + a.token_command.front();
  }
  return "";
}

std::string command_line(const command& c) {
  std::string out = fmt::format("type {} ({})", *c.type, type_name(*c.type));
  const auto& data = *c.data;
  out += fmt::format(", data {}{} ({} chars)", data.substr(0, 60), data.size() > 60 ? "..." : "",
                     data.size());
  const auto opt = [&](const char* name, const std::optional<std::int64_t>& v) {
    if (v) out += fmt::format(", {} {}", name, *v);
  };
  opt("dataFormat", c.data_format);
  opt("qos", c.qos);
  opt("isCache", c.is_cache);
  opt("cacheTime", c.cache_time);
  opt("isCover", c.is_cover);
  return out;
}

}  // namespace

// The phases as planned: each one's devices by cohort (largest first), its
// gate. The census and the tally read the list twice more, as a run reads it.
struct phase_row {
  std::string name;  // "canary", "phase 1", ..., "rest"
  std::uint64_t total = 0;
  std::vector<std::pair<std::string, std::uint64_t>> cohorts;
  const phase_gate* gate = nullptr;  // null for the rest
};
struct phases_view {
  std::size_t cohorts = 0;
  std::vector<phase_step> steps;
  std::vector<phase_row> rows;  // empty without phases
};

static bool tally_phases(const job& j, const std::optional<shard_spec>& shard, phases_view& v) {
  const auto& ro = j.rollout;
  v.steps = ro.steps();
  if (v.steps.empty()) return true;
  std::string error;
  phase_plan plan(ro);
  for (int pass = 0; pass < 2; ++pass) {
    opened_devices devices;
    if (!open_devices(j, devices, error)) {
      say("fleetcast: {}: {}\n", j.job_file, error);
      return false;
    }
    if (shard) devices.stream->set_shard(*shard);
    if (pass == 0) {
      if (!take_census(plan, *devices.stream, error)) {
        say("fleetcast: {}: {}\n", devices.name, error);
        return false;
      }
      continue;
    }
    device_record record;
    record_kind kind;
    while (devices.stream->next(record, kind))
      if (kind == record_kind::device) plan.tally(record.device, record.fingerprint);
  }
  v.cohorts = plan.cohorts();
  for (unsigned k = 0; k < plan.phases(); ++k) {
    phase_row row;
    const bool rest = k + 1 == plan.phases();
    row.name = k == 0 ? std::string("canary") : rest ? "rest" : fmt::format("phase {}", k);
    if (!rest) row.gate = &v.steps[k].gate;
    for (std::uint32_t c = 0; c < plan.cohorts(); ++c) {
      const auto n = plan.tallied(k, c);
      row.total += n;
      if (n > 0) row.cohorts.emplace_back(plan.cohort_name(c), n);
    }
    std::stable_sort(row.cohorts.begin(), row.cohorts.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    v.rows.push_back(std::move(row));
  }
  return true;
}

static double gate_ratio(const job& j, const phase_gate& g) {
  return g.max_failure_ratio.value_or(j.rollout.abort_failure_ratio);
}

static void print_phases(std::FILE* out, const job& j, const phases_view& v) {
  if (v.rows.empty()) return;
  const auto& ro = j.rollout;
  const char* by = ro.cohort_by == cohort_key::product_key ? "productKey" : "gatewayProductKey";
  fmt::print(
      out,
      "  cohorts      {} by {}; the canary holds at least {} of each with {} or more devices\n",
      v.cohorts, by, ro.min_per_cohort, ro.cohort_min_devices);
  for (const auto& row : v.rows) {
    std::string cohorts;
    for (std::size_t i = 0; i < row.cohorts.size() && i < 8; ++i) {
      const auto& name = row.cohorts[i].first;
      cohorts += fmt::format("{}{} {}", i ? ", " : "", name.empty() ? "(none)" : name,
                             row.cohorts[i].second);
    }
    if (row.cohorts.size() > 8) cohorts += fmt::format(", and {} more", row.cohorts.size() - 8);
    fmt::print(out, "  {:<12} {} devices in {} cohort{}{}{}\n",
               row.name == "rest" ? "the rest" : row.name, row.total, row.cohorts.size(),
               row.cohorts.size() == 1 ? "" : "s", cohorts.empty() ? "" : ": ", cohorts);
    if (!row.gate) break;
    const auto& g = *row.gate;
    std::string gate = fmt::format(
        "at most {:.1f}% failed, in the phase and in each cohort of at "
        "least {} devices in it",
        100 * gate_ratio(j, g), std::max<std::uint64_t>(1, ro.min_per_cohort));
    if (ro.exclude_failing_cohorts) gate += " (a cohort above it is excluded, not the rollout)";
    if (g.wait_for_ack) gate += ", judged once its acknowledgements are in";
    if (g.wait_for_approval) gate += ", then an operator's approval";
    if (g.wait_s > 0) gate += fmt::format(", then {} s", g.wait_s);
    fmt::print(out, "  {:<12} {}\n", "  gate", gate);
  }
}

// The plan as one JSON object (`--dry-run --json`), on standard output.
static void print_plan_json(const job& j, const std::string& job_file, const rollout_plan& plan,
                            const phases_view& v) {
  std::string out = "{\"job\":";
  append_json_string(out, j.name);
  out += ",\"job_file\":";
  append_json_string(out, job_file);
  out += ",\"endpoint\":";
  append_json_string(out, j.endpoint.url);
  fmt::format_to(std::back_inserter(out),
                 ",\"records\":{},\"devices\":{},\"invalid\":{},\"duplicates\":{},"
                 "\"batches\":{},\"batch_size\":{},\"last_batch\":{},\"body_bytes\":{},"
                 "\"min_seconds\":{:.1f},\"output\":",
                 plan.records, plan.devices, plan.invalid, plan.duplicates, plan.batches,
                 plan.batch_size, plan.last_batch, plan.body_bytes, plan.min_seconds);
  append_json_string(out, j.output_dir);
  out += ",\"phases\":[";
  for (std::size_t k = 0; k < v.rows.size(); ++k) {
    const auto& row = v.rows[k];
    out += k ? ",{\"phase\":" : "{\"phase\":";
    append_json_string(out, row.name);
    fmt::format_to(std::back_inserter(out), ",\"devices\":{},\"cohorts\":{{", row.total);
    for (std::size_t i = 0; i < row.cohorts.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, row.cohorts[i].first);
      fmt::format_to(std::back_inserter(out), ":{}", row.cohorts[i].second);
    }
    out += '}';
    if (row.gate) {
      const auto& g = *row.gate;
      fmt::format_to(std::back_inserter(out),
                     ",\"gate\":{{\"max_failure_ratio\":{},\"wait_s\":{},\"wait_for\":\"{}\"}}",
                     gate_ratio(j, g), g.wait_s,
                     g.wait_for_approval ? "approval"
                     : g.wait_for_ack    ? "ack"
                                         : "answer");
    }
    out += '}';
  }
  out += "]}\n";
  fmt::print("{}", out);
}

// The plan's lines for the guard (abort), gateways, ramp, window and rate.
static void print_guard_and_pace(std::FILE* out, const job& j, const rollout_plan& plan) {
  const auto& ro = j.rollout;
  if (ro.abort_failure_ratio < 1.0) {
    fmt::print(
        out,
        "  abort        above {:.1f}% failed, once {} devices are done (fleet), once {} are (a "
        "cohort)\n",
        100 * ro.abort_failure_ratio, ro.abort_min_devices,
        std::max<std::uint64_t>({ro.abort_min_devices, ro.min_per_cohort, 1}));
  }
  if (ro.max_per_gateway > 0) {
    fmt::print(out, "  gateways     at most {} devices behind one gateway in flight\n",
               ro.max_per_gateway);
  }
  if (ro.ramp.start_rps > 0) {
    fmt::print(
        out, "  ramp         from {} requests/s, x{} every {} successful devices, up to {}\n",
        ro.ramp.start_rps, ro.ramp.factor, ro.ramp.every_devices, j.rate.requests_per_second);
  }
  if (ro.not_before || ro.not_after) {
    fmt::print(out, "  window       {} to {}\n",
               ro.not_before ? format_iso8601_utc(*ro.not_before) : "now",
               ro.not_after ? format_iso8601_utc(*ro.not_after) : "open");
  }
  std::string rate;
  if (j.rate.requests_per_second > 0)
    rate += fmt::format("{} requests/s", j.rate.requests_per_second);
  if (j.rate.devices_per_second > 0) {
    rate += fmt::format("{}{} devices/s", rate.empty() ? "" : ", ", j.rate.devices_per_second);
  }
  if (rate.empty()) {
    fmt::print(out, "  rate         unlimited\n");
  } else {
    fmt::print(out, "  rate         {}, burst {}: at least {:.1f} s\n", rate, j.rate.burst,
               plan.min_seconds);
  }
}

int dry_run(const std::string& job_file, std::optional<shard_spec> shard, bool json) {
  auto loaded = load_job(job_file);
  if (!loaded) return 2;
  const job& j = *loaded;
  std::string error;
  opened_devices devices;
  if (!open_devices(j, devices, error)) {
    say("fleetcast: {}: {}\n", job_file, error);
    return 2;
  }

  if (shard) devices.stream->set_shard(*shard);
  const rollout_plan plan = plan_rollout(j, *devices.stream);
  for (const auto& p : plan.problems) say("fleetcast: {}: {}\n", devices.name, p);
  const auto skipped = plan.invalid + plan.duplicates;
  if (skipped > plan.problems.size()) {
    say("fleetcast: {}: ... and {} more skipped records\n", devices.name,
        skipped - plan.problems.size());
  }
  if (!plan.fatal.empty()) {
    say("fleetcast: {}: {}\n", devices.name, plan.fatal);
    say("fleetcast: the device list cannot be read; nothing was sent\n");
    return 2;
  }
  if (plan.devices == 0) {
    say("fleetcast: {}: no device to send (code 5311: empty device list)\n", devices.name);
    return 2;
  }

  // With --json the plan's lines go to standard error, the JSON to standard output.
  std::FILE* const out = json ? stderr : stdout;
  fmt::print(out, "fleetcast dry run: job \"{}\" ({})\n", j.name, job_file);
  fmt::print(out, "  endpoint     {}\n", j.endpoint.url);
  fmt::print(out, "  target       POST {}\n", j.endpoint.target());
  fmt::print(out, "  auth         {} (not read in a dry run)\n", auth_source(j.auth));
  fmt::print(out, "  command      {}\n", command_line(j.cmd));
  fmt::print(out, "  devices      {} ({}): {} records\n", devices.name, to_string(j.devices.format),
             plan.records);
  fmt::print(out, "               {} to send, {} invalid, {} duplicate{}\n", plan.devices,
             plan.invalid, plan.duplicates, plan.duplicates == 1 ? "" : "s");
  fmt::print(
      out, "  batches      {} of up to {} devices{}; the last holds {}\n", plan.batches,
      plan.batch_size,
      j.batch.auto_size ? " (\"auto\": starts here, settles on what the server accepts)" : "",
      plan.last_batch);
  fmt::print(out, "  bodies       {} of JSON in all, largest {}\n", bytes(plan.body_bytes),
             bytes(plan.largest_body));
  phases_view phases;
  if (!tally_phases(j, shard, phases)) return 2;
  print_phases(out, j, phases);
  print_guard_and_pace(out, j, plan);
  fmt::print(out, "  connections  {}, pipeline depth {}; timeouts: connect {} ms, request {} ms\n",
             j.connections, j.pipeline_depth, j.timeouts.connect_ms, j.timeouts.request_ms);
  fmt::print(out, "  retry        up to {} attempts, backoff {}..{} ms, unknown outcome: {}\n",
             j.retry.max_attempts, j.retry.base_delay_ms, j.retry.max_delay_ms,
             j.retry.unknown_outcome == unknown_outcome_policy::retry ? "retry" : "fail");
  fmt::print(out, "  tls          {}{}\n", j.tls.verify ? "verify" : "NOT VERIFIED",
             j.tls.ca_file ? ", CA file " + *j.tls.ca_file : "");
  fmt::print(out, "  output       {}\n", j.output_dir);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);  // ru_maxrss is in KiB on Linux
  fmt::print(out, "  memory       peak RSS {:.1f} MiB (duplicate filter {})\n",
             static_cast<double>(usage.ru_maxrss) / 1024, bytes(plan.filter_bytes));
  fmt::print(out, "dry run: nothing was sent\n");
  if (json) print_plan_json(j, job_file, plan, phases);
  return skipped > 0 ? 1 : 0;
}

}  // namespace fleetcast::app
