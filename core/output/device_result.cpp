// Result names and the results.ndjson line format (see device_result.hpp).
#include <fleetcast/core/output/device_result.hpp>

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

namespace fleetcast {

std::string_view to_string(device_status s) noexcept {
  switch (s) {
    case device_status::succeeded:
      return "succeeded";
    case device_status::failed:
      return "failed";
    case device_status::skipped:
      return "skipped";
  }
  return "unknown";
}

std::string_view to_string(outcome_reason r) noexcept {
  switch (r) {
    case outcome_reason::accepted:
      return "accepted";
    case outcome_reason::device_failed:
      return "device_failed";
    case outcome_reason::missing_in_answer:
      return "missing_in_answer";
    case outcome_reason::batch_rejected:
      return "batch_rejected";
    case outcome_reason::transport_failed:
      return "transport_failed";
    case outcome_reason::invalid_record:
      return "invalid_record";
    case outcome_reason::duplicate:
      return "duplicate";
    case outcome_reason::aborted:
      return "aborted";
    case outcome_reason::cancelled:
      return "cancelled";
    case outcome_reason::job_failed:
      return "job_failed";
  }
  return "unknown";
}

device_status status_of(outcome_reason r) noexcept {
  switch (r) {
    case outcome_reason::accepted:
      return device_status::succeeded;
    case outcome_reason::device_failed:
    case outcome_reason::missing_in_answer:
    case outcome_reason::batch_rejected:
    case outcome_reason::transport_failed:
      return device_status::failed;
    default:
      return device_status::skipped;
  }
}

void append_result_line(std::string& out, const device_result& r) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"index\":{},\"productKey\":", r.index);
  append_json_string(out, r.device.product_key);
  out += ",\"deviceKey\":";
  append_json_string(out, r.device.device_key);
  out += ",\"gatewayProductKey\":";
  append_json_string_or_null(out, r.device.gateway_product_key);
  out += ",\"gatewayDeviceKey\":";
  append_json_string_or_null(out, r.device.gateway_device_key);
  fmt::format_to(it, ",\"status\":\"{}\",\"reason\":\"{}\",\"ticket\":", to_string(r.status()),
                 to_string(r.reason));
  append_json_string_or_null(out, r.ticket);
  out += ",\"code\":";
  if (r.code) {
    fmt::format_to(it, "{}", *r.code);
  } else {
    out += "null";
  }
  out += ",\"msg\":";
  append_json_string_or_null(out, r.msg);
  fmt::format_to(it, ",\"attempts\":{},\"uncertain\":{}}}\n", r.attempts, r.uncertain);
}

}  // namespace fleetcast
