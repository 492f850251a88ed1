// Job file parsing with the simdjson DOM (see job_parser.hpp).
#include <fleetcast/core/job/job_parser.hpp>

#include <fleetcast/core/output/device_result.hpp>
#include "core/job/job_checks.hpp"
#include "core/job/job_reader.hpp"
#include "core/job/json_locate.hpp"
#include "core/job/json_syntax.hpp"
#include "core/job/proxy.hpp"
#include "core/job/suggest.hpp"
#include "core/job/url.hpp"
#include "core/protocol/validation.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <initializer_list>
#include <limits>

namespace fleetcast {

namespace dom = simdjson::dom;
namespace fs = std::filesystem;

std::string job_error::describe(std::string_view job_file) const {
  std::string out(job_file);
  if (line != 0) {
    fmt::format_to(std::back_inserter(out), ":{}:{}", line, column);
  }
  out += ": ";
  if (!field.empty()) {
    out += field;
    out += ": ";
  }
  out += message;
  if (code) fmt::format_to(std::back_inserter(out), " (code {})", *code);
  return out;
}

using job_parsing::job_reader;
using job_parsing::join;
using job_parsing::read_acks;
using job_parsing::read_auth;

std::string job_name_from_stem(std::string_view stem) {
  std::string name(stem.substr(0, 128));
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !is_name_char(c); }, '_');
  return name;
}

namespace {

// rollout.phases, cohort_by, cohort_min_devices, min_per_cohort.
void read_phases(job_reader& r, dom::object obj, rollout_config& ro) {
  std::string by;
  if (r.string(obj, "rollout", "cohort_by", by)) {
    if (by == "productKey") {
      ro.cohort_by = cohort_key::product_key;
    } else if (by == "gatewayProductKey") {
      ro.cohort_by = cohort_key::gateway_product_key;
    } else if (by.starts_with("column:")) {
      r.error("rollout.cohort_by",
              "a column of the device list (\"column:NAME\") is not read by this version: "
              "\"productKey\" or \"gatewayProductKey\"");
    } else {
      r.error("rollout.cohort_by",
              fmt::format("\"{}\" is not \"productKey\" or \"gatewayProductKey\"", by));
    }
  }
  std::string on_failure;
  if (r.string(obj, "rollout", "on_cohort_failure", on_failure)) {
    if (on_failure == "exclude")
      ro.exclude_failing_cohorts = true;
    else if (on_failure != "abort")
      r.error("rollout.on_cohort_failure",
              fmt::format("\"{}\" is not \"abort\" or \"exclude\"", on_failure));
  }
  r.integer(obj, "rollout", "cohort_min_devices", ro.cohort_min_devices,
            rollout_config::cohort_min_devices_range);
  r.integer(obj, "rollout", "min_per_cohort", ro.min_per_cohort,
            rollout_config::min_per_cohort_range);
  dom::element x;
  if (obj["phases"].get(x) != simdjson::SUCCESS) return;
  dom::array list;
  if (x.get_array().get(list) != simdjson::SUCCESS || list.size() == 0 || list.size() > 20) {
    r.error("rollout.phases",
            "must be a list of 1 to 20 phases, each {\"devices\": N or \"P%\", "
            "\"gate\": {...}}");
    return;
  }
  std::size_t k = 0;
  double last_share = 0;
  std::uint64_t last_count = 0;
  for (dom::element e : list) {
    const auto at = fmt::format("rollout.phases[{}]", k++);
    dom::object step;
    if (!r.fields(e, at, {"devices", "gate"}, step)) continue;
    phase_step p;
    dom::element d;
    std::string_view text;
    std::uint64_t n = 0;
    if (step["devices"].get(d) != simdjson::SUCCESS) {
      r.error(at + ".devices", "is required: a count, or a share of the fleet as \"P%\"");
    } else if (d.get_uint64().get(n) == simdjson::SUCCESS) {
      if (n == 0) r.error(at + ".devices", "must be at least 1");
      if (n <= last_count && n > 0)
        r.error(at + ".devices", "phases are cumulative: each must cover more than the one before");
      p.devices = last_count = n;
    } else if (d.get_string().get(text) == simdjson::SUCCESS && text.ends_with('%')) {
      double v = -1;
      try {
        std::size_t used = 0;
        const std::string num(text.substr(0, text.size() - 1));
        v = std::stod(num, &used);
        if (used != num.size()) v = -1;
      } catch (const std::exception&) {
        v = -1;
      }
      if (!(v > 0 && v <= 100)) {
        r.error(at + ".devices",
                fmt::format("\"{}\" is not a share above 0% and at most 100%", text));
      } else {
        if (v / 100 <= last_share)
          r.error(at + ".devices",
                  "phases are cumulative: each must cover more than the one before");
        p.share = last_share = v / 100;
      }
    } else {
      r.error(at + ".devices", "must be a count, or a share of the fleet as \"P%\"");
    }
    if (p.devices > 0 && last_share > 0)
      r.error(at + ".devices", "give every phase as a count or every phase as a share, not both");
    dom::object gate;
    if (step["gate"].get(d) == simdjson::SUCCESS &&
        r.fields(d, at + ".gate", {"max_failure_ratio", "wait_s", "wait_for"}, gate)) {
      const auto g = at + ".gate";
      if (gate["max_failure_ratio"].error() == simdjson::SUCCESS) {
        double ratio = -1;
        r.number(gate, g, "max_failure_ratio", ratio, 0, 1);
        if (ratio >= 0) p.gate.max_failure_ratio = ratio;
      }
      r.number(gate, g, "wait_s", p.gate.wait_s, phase_gate::wait_s_range);
      std::string wait_for;
      if (r.string(gate, g, "wait_for", wait_for)) {
        if (wait_for == "ack") {
          p.gate.wait_for_ack = true;
        } else if (wait_for == "approval") {
          p.gate.wait_for_approval = true;
        } else if (wait_for != "answer") {
          r.error(g + ".wait_for", "must be \"answer\", \"ack\" or \"approval\"");
        }
      }
    }
    ro.phases.push_back(p);
  }
}

void read_command(job_reader& r, dom::element e, command& cmd) {
  dom::object obj;
  if (!r.fields(e, "command",
                {"type", "data", "dataFormat", "qos", "isCache", "cacheTime", "isCover"}, obj)) {
    return;
  }
  // Fields whose type is wrong: the API's rules are checked on the others,
  // so that one round shows every problem.
  std::vector<std::string> mistyped;
  auto opt_int = [&](std::string_view key, std::optional<std::int64_t>& out) {
    dom::element v;
    if (obj[key].get(v) != simdjson::SUCCESS || v.is_null()) return;
    std::int64_t value = 0;
    const std::size_t before = r.errors_.size();
    r.integer(obj, "command", key, value, std::numeric_limits<std::int32_t>::min(),
              std::numeric_limits<std::int32_t>::max());
    if (r.errors_.size() == before) {
      out = value;
    } else {
      mistyped.emplace_back(key);
    }
  };
  opt_int("type", cmd.type);
  opt_int("dataFormat", cmd.data_format);
  opt_int("qos", cmd.qos);
  opt_int("isCache", cmd.is_cache);
  opt_int("cacheTime", cmd.cache_time);
  opt_int("isCover", cmd.is_cover);
  dom::element data;
  if (obj["data"].get(data) == simdjson::SUCCESS && !data.is_null()) {
    std::string_view text;
    if (data.get_string().get(text) == simdjson::SUCCESS) {
      cmd.data = std::string(text);
    } else if (data.is_array() || data.is_object()) {
      // Convenience for property and service commands: the JSON itself,
      // sent as the string the API expects.
      cmd.data = simdjson::minify(data);
    } else {
      r.wrong_type("command.data", data, "a string (or, for type 2 or 3, JSON)");
      mistyped.emplace_back("data");
    }
  }
  // Without a valid type the rules that depend on it say nothing useful.
  if (std::find(mistyped.begin(), mistyped.end(), "type") != mistyped.end()) return;
  for (auto& v : validate_command(cmd)) {
    // A rule about a mistyped field repeats its type error ("required", ...).
    if (std::find(mistyped.begin(), mistyped.end(), v.field) != mistyped.end()) continue;
    int code = v.code.category().name() == std::string_view("fleetcast.api") ? v.code.value() : 0;
    r.error("command." + v.field, v.message, code ? std::optional<int>(code) : std::nullopt);
  }
}

void read_devices(job_reader& r, dom::element e, device_source& devices) {
  if (e.is_array()) {
    dom::array arr;
    if (e.get_array().get(arr) != simdjson::SUCCESS || arr.size() == 0) {
      r.error("devices", "the inline device list is empty", 5311);
      return;
    }
    devices.file.reset();
    devices.format = device_format::json_array;
    devices.inline_json = simdjson::minify(e);
    return;
  }
  dom::object obj;
  if (!r.fields(e, "devices", {"file", "format"}, obj)) return;
  std::string file;
  if (!r.string(obj, "devices", "file", file)) {
    if (obj["file"].error() == simdjson::NO_SUCH_FIELD) {
      r.error("devices.file", "is required (or give devices as an inline array)");
    }
    return;
  }
  devices.file = r.path(file);
  std::string format;
  if (r.string(obj, "devices", "format", format)) {
    if (format == "csv") {
      devices.format = device_format::csv;
    } else if (format == "ndjson" || format == "jsonl") {
      devices.format = device_format::ndjson;
    } else if (format == "json") {
      devices.format = device_format::json_array;
    } else {
      r.error("devices.format", fmt::format("\"{}\" is not csv, ndjson, jsonl or json", format));
    }
  } else if (auto f = format_from_path(file)) {
    devices.format = *f;
  } else {
    r.error("devices.file",
            fmt::format("cannot tell the format of \"{}\" from its extension: use .csv, .ndjson, "
                        ".jsonl or .json, or set devices.format",
                        file));
  }
}

}  // namespace

namespace {
job_parse_result read_job(std::string_view text, std::string_view job_file);
}  // namespace

job_parse_result parse_job(std::string_view text, std::string_view job_file) {
  auto result = read_job(text, job_file);
  // Each field's mistake with the line and column of its key.
  for (auto& e : result.errors) {
    if (e.field.empty() || e.line != 0 || e.field == "job") continue;
    if (const auto at = locate_json_field(text, e.field)) {
      e.line = at->line;
      e.column = at->column;
    }
  }
  return result;
}

namespace {

job_parse_result read_job(std::string_view text, std::string_view job_file) {
  job_parse_result result;
  auto& errors = result.errors;

  dom::parser parser;
  simdjson::padded_string padded(text);
  dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
    job_error e;
    if (auto syntax = find_json_syntax_error(text)) {
      e.line = syntax->line;
      e.column = syntax->column;
      e.message = "invalid JSON: " + syntax->message;
    } else {
      e.message = "invalid JSON";
    }
    errors.push_back(std::move(e));
    return result;
  }

  const fs::path job_path(job_file);
  job_reader r(errors, job_path.parent_path());
  job j;
  j.job_file = std::string(job_file);
  dom::object top;
  if (!r.fields(root, "",
                {"name", "endpoint", "auth", "tls", "command", "devices", "batch", "rate",
                 "connections", "pipeline_depth", "max_answer_bytes", "timeouts", "retry",
                 "rollout", "output", "proxy", "acks"},
                top)) {
    return result;
  }
  for (std::string_view required : {"endpoint", "auth", "command", "devices"}) {
    if (top[required].error() == simdjson::NO_SUCH_FIELD) {
      r.error(std::string(required), "is required");
    }
  }

  if (!r.string(top, "", "name", j.name)) {
    j.name = job_name_from_stem(job_path.stem().string());
  } else if (!is_valid_name(j.name)) {
    r.error("name", "may hold only letters, digits, '-', '_' and '.' (at most 128)");
  }

  std::string url;
  if (r.string(top, "", "endpoint", url)) {
    if (auto problem = parse_endpoint(url, j.endpoint))
      r.error("endpoint", "\"" + url + "\" " + *problem);
  }

  dom::element e;
  if (top["auth"].get(e) == simdjson::SUCCESS) read_auth(r, e, j.auth);
  if (top["command"].get(e) == simdjson::SUCCESS) read_command(r, e, j.cmd);
  if (top["devices"].get(e) == simdjson::SUCCESS) read_devices(r, e, j.devices);

  dom::object obj;
  if (top["tls"].get(e) == simdjson::SUCCESS &&
      r.fields(e, "tls", {"verify", "ca_file", "allow_plain_http"}, obj)) {
    r.boolean(obj, "tls", "verify", j.tls.verify);
    r.boolean(obj, "tls", "allow_plain_http", j.tls.allow_plain_http);
    dom::element ca;
    std::string ca_file;
    if (obj["ca_file"].get(ca) == simdjson::SUCCESS && !ca.is_null() &&
        r.string(obj, "tls", "ca_file", ca_file)) {
      j.tls.ca_file = r.path(ca_file);
    }
  }
  if (top["batch"].get(e) == simdjson::SUCCESS && r.fields(e, "batch", {"max_devices"}, obj)) {
    dom::element m;
    std::string_view word;
    if (obj["max_devices"].get(m) == simdjson::SUCCESS) {
      if (m.get_string().get(word) == simdjson::SUCCESS) {
        if (word != "auto") r.error("batch.max_devices", "must be a number or \"auto\"");
      } else {
        j.batch.auto_size = false;
        r.integer(obj, "batch", "max_devices", j.batch.max_devices,
                  batch_config::max_devices_range);
      }
    }
  }
  if (top["rate"].get(e) == simdjson::SUCCESS &&
      r.fields(e, "rate", {"requests_per_second", "devices_per_second", "burst"}, obj)) {
    r.number(obj, "rate", "requests_per_second", j.rate.requests_per_second,
             rate_config::requests_per_second_range);
    r.number(obj, "rate", "devices_per_second", j.rate.devices_per_second,
             rate_config::devices_per_second_range);
    r.number(obj, "rate", "burst", j.rate.burst, rate_config::burst_range);
  }
  std::string proxy;
  if (r.string(top, "", "proxy", proxy)) {
    proxy_url parsed;
    if (proxy != "direct") {
      if (auto problem = parse_proxy_url(proxy, parsed)) r.error("proxy", *problem);
    }
    j.proxy = proxy;
  }
  r.integer(top, "", "connections", j.connections, job::connections_range);
  r.integer(top, "", "pipeline_depth", j.pipeline_depth, job::pipeline_depth_range);
  r.integer(top, "", "max_answer_bytes", j.max_answer_bytes, job::max_answer_bytes_range);
  if (top["timeouts"].get(e) == simdjson::SUCCESS &&
      r.fields(e, "timeouts", {"connect_ms", "request_ms", "unreachable_s"}, obj)) {
    r.integer(obj, "timeouts", "connect_ms", j.timeouts.connect_ms,
              timeout_config::connect_ms_range);
    r.integer(obj, "timeouts", "request_ms", j.timeouts.request_ms,
              timeout_config::request_ms_range);
    r.integer(obj, "timeouts", "unreachable_s", j.timeouts.unreachable_s,
              timeout_config::unreachable_s_range);
  }
  if (top["retry"].get(e) == simdjson::SUCCESS &&
      r.fields(
          e, "retry",
          {"max_attempts", "base_delay_ms", "max_delay_ms", "unknown_outcome", "max_retry_after_s"},
          obj)) {
    r.integer(obj, "retry", "max_retry_after_s", j.retry.max_retry_after_s,
              retry_config::max_retry_after_s_range);
    r.integer(obj, "retry", "max_attempts", j.retry.max_attempts, retry_config::max_attempts_range);
    r.integer(obj, "retry", "base_delay_ms", j.retry.base_delay_ms,
              retry_config::base_delay_ms_range);
    r.integer(obj, "retry", "max_delay_ms", j.retry.max_delay_ms, retry_config::max_delay_ms_range);
    std::string policy;
    if (r.string(obj, "retry", "unknown_outcome", policy)) {
      if (policy == "retry") {
        j.retry.unknown_outcome = unknown_outcome_policy::retry;
      } else if (policy == "fail") {
        j.retry.unknown_outcome = unknown_outcome_policy::fail;
      } else {
        r.error("retry.unknown_outcome",
                fmt::format("\"{}\" is not \"retry\" or \"fail\"", policy));
      }
    }
  }
  if (top["rollout"].get(e) == simdjson::SUCCESS &&
      r.fields(e, "rollout",
               {"canary_devices", "canary_wait_s", "abort_failure_ratio", "abort_min_devices",
                "abort_on", "ramp", "max_per_gateway", "not_before", "not_after", "canary_wait_for",
                "phases", "cohort_by", "cohort_min_devices", "min_per_cohort", "on_cohort_failure"},
               obj)) {
    read_phases(r, obj, j.rollout);
    r.number(obj, "rollout", "canary_wait_s", j.rollout.canary_wait_s,
             rollout_config::canary_wait_s_range);
    r.integer(obj, "rollout", "max_per_gateway", j.rollout.max_per_gateway,
              rollout_config::max_per_gateway_range);
    dom::element x;
    if (obj["abort_on"].get(x) == simdjson::SUCCESS) {
      dom::array kinds;
      if (x.get_array().get(kinds) != simdjson::SUCCESS || kinds.size() == 0) {
        r.error("rollout.abort_on", "must be a non-empty array of failure kinds");
      } else {
        j.rollout.abort_on = 0;
        for (dom::element k : kinds) {
          std::string_view name;
          bool known = false;
          if (k.get_string().get(name) == simdjson::SUCCESS) {
            if (name == "delivery_failed" || name == "no_ack") {
              j.rollout.abort_on |= name == "no_ack" ? rollout_config::abort_on_no_ack
                                                     : rollout_config::abort_on_delivery_failed;
              known = true;
            }
            for (std::size_t i = 0; i < outcome_reason_count; ++i) {
              const auto reason = static_cast<outcome_reason>(i);
              if (status_of(reason) == device_status::failed && to_string(reason) == name) {
                j.rollout.abort_on |= 1u << i;
                known = true;
              }
            }
          }
          if (!known) {
            r.error("rollout.abort_on",
                    "kinds are device_failed, missing_in_answer, batch_rejected, transport_failed, "
                    "and with acks delivery_failed, no_ack");
            break;
          }
        }
      }
    }
    std::string wait_for;
    if (r.string(obj, "rollout", "canary_wait_for", wait_for)) {
      if (wait_for == "ack")
        j.rollout.canary_wait_for_ack = true;
      else if (wait_for != "answer")
        r.error("rollout.canary_wait_for", "must be \"answer\" or \"ack\"");
    }
    dom::object ramp;
    if (obj["ramp"].get(x) == simdjson::SUCCESS &&
        r.fields(x, "rollout.ramp", {"start_rps", "factor", "every_devices"}, ramp)) {
      r.number(ramp, "rollout.ramp", "start_rps", j.rollout.ramp.start_rps,
               ramp_config::start_rps_range);
      r.number(ramp, "rollout.ramp", "factor", j.rollout.ramp.factor, ramp_config::factor_range);
      r.integer(ramp, "rollout.ramp", "every_devices", j.rollout.ramp.every_devices,
                ramp_config::every_devices_range);
      if (ramp["start_rps"].error() == simdjson::NO_SUCH_FIELD) {
        r.error("rollout.ramp.start_rps", "is required");
      }
    }
    for (const char* key : {"not_before", "not_after"}) {
      std::string when;
      if (!r.string(obj, "rollout", key, when)) continue;
      auto t = parse_iso8601(when);
      if (!t) {
        r.error(join("rollout", key),
                fmt::format("\"{}\" is not an ISO 8601 time with an offset, e.g. "
                            "2026-11-26T22:00:00+01:00",
                            when));
      } else {
        (std::string_view(key) == "not_before" ? j.rollout.not_before : j.rollout.not_after) = *t;
      }
    }
    r.integer(obj, "rollout", "canary_devices", j.rollout.canary_devices,
              rollout_config::canary_devices_range);
    r.number(obj, "rollout", "abort_failure_ratio", j.rollout.abort_failure_ratio,
             rollout_config::abort_failure_ratio_range);
    r.integer(obj, "rollout", "abort_min_devices", j.rollout.abort_min_devices,
              rollout_config::abort_min_devices_range);
  }
  if (top["acks"].get(e) == simdjson::SUCCESS) read_acks(r, e, j.acks);
  std::string dir;
  if (top["output"].get(e) == simdjson::SUCCESS && r.fields(e, "output", {"dir"}, obj) &&
      r.string(obj, "output", "dir", dir)) {
    j.output_dir = r.path(dir);
  } else {
    j.output_dir = r.path("out/" + j.name);
  }

  // The rules between fields, as validate() has them (the reader has
  // checked the rest, each where it read it).
  check_job(j, errors, job_checks::between_fields);
  if (errors.empty()) {
    result.job = std::move(j);
  } else {
    result.partial = std::move(j);
  }
  return result;
}

}  // namespace

}  // namespace fleetcast
