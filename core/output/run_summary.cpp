// summary.json counters (see run_summary.hpp).
#include <fleetcast/core/output/run_summary.hpp>
#include <fleetcast/core/output/secret_registry.hpp>

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

namespace fleetcast {

std::string_view to_string(job_state s) noexcept {
  switch (s) {
    case job_state::completed:
      return "completed";
    case job_state::aborted:
      return "aborted";
    case job_state::cancelled:
      return "cancelled";
    case job_state::failed:
      return "failed";
  }
  return "unknown";
}

void run_summary::count(const device_result& r) noexcept {
  ++records;
  ++by_status[static_cast<std::size_t>(r.status())];
  ++by_reason[static_cast<std::size_t>(r.reason)];
  if (r.attempts > 1) retries += r.attempts - 1;
}

void run_summary::add_counts(const run_summary& earlier) noexcept {
  records += earlier.records;
  for (std::size_t i = 0; i < by_status.size(); ++i) by_status[i] += earlier.by_status[i];
  for (std::size_t i = 0; i < by_reason.size(); ++i) by_reason[i] += earlier.by_reason[i];
  retries += earlier.retries;
}

double run_summary::devices_per_second() const noexcept {
  const double s = runs.empty() ? elapsed_s : runs.back().elapsed_s;
  const auto n = runs.empty() ? records : runs.back().devices;
  return s > 0 ? static_cast<double>(n) / s : 0.0;
}

int run_summary::exit_code() const noexcept {
  switch (state) {
    case job_state::aborted:
      return 3;
    case job_state::cancelled:
      return 4;
    case job_state::failed:
      return 1;
    case job_state::completed:
      break;
  }
  if (deliveries && deliveries->delivered < count_of(device_status::succeeded)) return 1;
  return count_of(device_status::succeeded) == records ? 0 : 1;
}

std::string run_summary::to_json() const {
  std::string out = "{\"name\":";
  append_json_string(out, name);
  auto it = std::back_inserter(out);
  fmt::format_to(it, ",\"state\":\"{}\",\"devices\":{},\"by_status\":{{", to_string(state),
                 records);
  for (std::size_t i = 0; i < by_status.size(); ++i) {
    fmt::format_to(it, "{}\"{}\":{}", i ? "," : "", to_string(static_cast<device_status>(i)),
                   by_status[i]);
  }
  out += "},\"by_reason\":{";
  for (std::size_t i = 0; i < by_reason.size(); ++i) {
    fmt::format_to(it, "{}\"{}\":{}", i ? "," : "", to_string(static_cast<outcome_reason>(i)),
                   by_reason[i]);
  }
  fmt::format_to(it,
                 "}},\"requests\":{},\"retries\":{},\"elapsed_s\":{:.3f},"
                 "\"devices_per_second\":{:.1f},\"batch_size\":{},\"reason\":",
                 requests, retries, elapsed_s, devices_per_second(), batch_size);
  append_json_string_or_null(out, reason);
  if (!stage.empty()) {
    out += ",\"stage\":";
    append_json_string(out, stage);
  }
  if (deliveries) {
    const auto& d = *deliveries;
    const auto& m = d.messages;
    fmt::format_to(
        it,
        ",\"deliveries\":{{\"delivered\":{},\"delivery_failed\":{},\"no_ack\":{},"
        "\"waiting\":{},\"messages\":{{\"early\":{},\"duplicates\":{},\"contradictory\":{},"
        "\"mismatched\":{},\"unmatched\":{},\"overflow\":{},\"late\":{},\"other\":{},"
        "\"malformed\":{},\"refused_lines\":{}}}}}",
        d.delivered, d.delivery_failed, d.no_ack, d.waiting, m.early, m.duplicates, m.contradictory,
        m.mismatched, m.unmatched, m.overflow, m.late, m.other_messages, m.malformed,
        m.refused_lines);
  }
  out += ",\"runs\":[";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    if (i) out += ',';
    out += "{\"state\":";
    if (r.state) {
      fmt::format_to(it, "\"{}\",\"elapsed_s\":{:.3f}", to_string(*r.state), r.elapsed_s);
    } else {
      out += "\"interrupted\",\"elapsed_s\":null";
    }
    fmt::format_to(it, ",\"devices\":{},\"requests\":{}}}", r.devices, r.requests);
  }
  out += "]}\n";
  secret_registry::process().redact(out);  // the reason may quote a peer
  return out;
}

}  // namespace fleetcast
