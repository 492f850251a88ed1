// Streaming merge of PkdkResults (see pkdk_result_merger.hpp).
#include "core/protocol/pkdk_result_merger.hpp"

#include "core/protocol/json_escape.hpp"
#include "core/protocol/request_encoder.hpp"

namespace fleetcast {

namespace {

// ,{"data":{...},"ticket":"..."} (or "msg"): one reservation per entry.
void append_entry(std::string& out, bool first, const pkdk_view& d, std::string_view key,
                  std::string_view text) {
  append_bounded(out, 24 + pkdk_json_bound(d) + json_string_bound(text.size()), [&](char* w) {
    w = write_bytes(w, first ? "{\"data\":" : ",{\"data\":");
    w = write_pkdk_json(w, d);
    w = write_bytes(w, key);
    w = write_json_string(w, text);
    *w++ = '}';
    return w;
  });
}

}  // namespace

void pkdk_result_merger::add_success(const pkdk_view& d, std::string_view ticket) {
  append_entry(successes_, success_count_++ == 0, d, ",\"ticket\":", ticket);
}

void pkdk_result_merger::add_failure(const pkdk_view& d, std::string_view msg) {
  append_entry(failures_, failure_count_++ == 0, d, ",\"msg\":", msg);
}

void pkdk_result_merger::add(const device_result& r) {
  switch (r.reason) {
    case outcome_reason::accepted:
      add_success(r.device, r.ticket);
      break;
    case outcome_reason::invalid_record:
    case outcome_reason::duplicate:
      break;
    case outcome_reason::aborted:
    case outcome_reason::excluded:
    case outcome_reason::cancelled:
    case outcome_reason::job_failed: {
      std::string msg = "skipped: ";
      msg += to_string(r.reason);
      if (!r.msg.empty()) {
        msg += ": ";
        msg += r.msg;
      }
      add_failure(r.device, msg);
      break;
    }
    default:
      add_failure(r.device, r.msg);
  }
}

void pkdk_result_merger::add(const decoded_response& part) {
  for (const auto& s : part.successes) add_success(s.device, s.ticket);
  for (const auto& f : part.failures) add_failure(f.device, f.msg);
}

std::string pkdk_result_merger::head(std::string_view msg) {
  std::string head = "{\"code\":200,\"msg\":";
  append_json_string(head, msg);
  head += ",\"extMsg\":null,\"data\":{\"successList\":[";
  return head;
}

std::string pkdk_result_merger::whole(std::string_view msg) const {
  auto out = head(msg);
  out += successes_;
  out += between();
  out += failures_;
  out += tail();
  return out;
}

}  // namespace fleetcast
