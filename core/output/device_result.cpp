// Result names and the results.ndjson line format (see device_result.hpp).
#include <fleetcast/core/output/device_result.hpp>

#include "core/protocol/json_escape.hpp"

#include <charconv>

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
    case outcome_reason::excluded:
      return "excluded";
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

namespace {

template <typename Int>
char* write_number(char* w, Int v) noexcept {
  return std::to_chars(w, w + 24, v).ptr;
}

}  // namespace

// One reservation, then raw writes: this runs once per device
// (bench/instruction_budgets.txt, write_phase).
void append_result_line(std::string& out, const device_result& r) {
  const auto& d = r.device;
  const std::size_t bound = 256 + json_string_bound(d.product_key.size()) +
                            json_string_bound(d.device_key.size()) +
                            json_string_bound(d.gateway_product_key.size()) +
                            json_string_bound(d.gateway_device_key.size()) +
                            json_string_bound(r.ticket.size()) + json_string_bound(r.msg.size());
  // Keys that validation found plain are copied without looking again.
  const auto key = d.plain ? write_plain_json_string : write_json_string;
  const auto key_or_null = [&](char* w, std::string_view s) {
    return s.empty() ? write_bytes(w, "null") : key(w, s);
  };
  append_bounded(out, bound, [&](char* w) {
    w = write_bytes(w, "{\"index\":");
    w = write_number(w, r.index);
    w = write_bytes(w, ",\"productKey\":");
    w = key(w, d.product_key);
    w = write_bytes(w, ",\"deviceKey\":");
    w = key(w, d.device_key);
    w = write_bytes(w, ",\"gatewayProductKey\":");
    w = key_or_null(w, d.gateway_product_key);
    w = write_bytes(w, ",\"gatewayDeviceKey\":");
    w = key_or_null(w, d.gateway_device_key);
    w = write_bytes(w, ",\"status\":\"");
    w = write_bytes(w, to_string(r.status()));
    w = write_bytes(w, "\",\"reason\":\"");
    w = write_bytes(w, to_string(r.reason));
    w = write_bytes(w, "\",\"ticket\":");
    w = write_json_string_or_null(w, r.ticket);
    w = write_bytes(w, ",\"code\":");
    w = r.code ? write_number(w, *r.code) : write_bytes(w, "null");
    w = write_bytes(w, ",\"msg\":");
    w = write_json_string_or_null(w, r.msg);
    w = write_bytes(w, ",\"attempts\":");
    w = write_number(w, r.attempts);
    return write_bytes(w, r.uncertain ? ",\"uncertain\":true}\n" : ",\"uncertain\":false}\n");
  });
}

}  // namespace fleetcast
