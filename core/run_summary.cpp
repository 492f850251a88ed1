// summary.json counters (see run_summary.hpp).
#include "core/run_summary.hpp"

#include "core/json_escape.hpp"

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
}

void run_summary::add_counts(const run_summary& earlier) noexcept {
  records += earlier.records;
  for (std::size_t i = 0; i < by_status.size(); ++i) by_status[i] += earlier.by_status[i];
  for (std::size_t i = 0; i < by_reason.size(); ++i) by_reason[i] += earlier.by_reason[i];
}

double run_summary::devices_per_second() const noexcept {
  return elapsed_s > 0 ? static_cast<double>(records) / elapsed_s : 0.0;
}

int run_summary::exit_code() const noexcept {
  if (state == job_state::aborted || state == job_state::cancelled) return 3;
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
                 "\"devices_per_second\":{:.1f},\"batch_size\":{}}}\n",
                 requests, retries, elapsed_s, devices_per_second(), batch_size);
  return out;
}

}  // namespace fleetcast
