// Streaming merge of PkdkResults (see pkdk_result_merger.hpp).
#include "core/protocol/pkdk_result_merger.hpp"

#include "core/protocol/json_escape.hpp"
#include "core/protocol/request_encoder.hpp"

namespace fleetcast {

void pkdk_result_merger::add_success(const pkdk_view& d, std::string_view ticket) {
  buf_.clear();
  if (success_count_++ != 0) buf_ += ',';
  buf_ += "{\"data\":";
  append_pkdk_json(buf_, d);
  buf_ += ",\"ticket\":";
  append_json_string(buf_, ticket);
  buf_ += '}';
  successes_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
}

void pkdk_result_merger::add_failure(const pkdk_view& d, std::string_view msg) {
  buf_.clear();
  if (failure_count_++ != 0) buf_ += ',';
  buf_ += "{\"data\":";
  append_pkdk_json(buf_, d);
  buf_ += ",\"msg\":";
  append_json_string(buf_, msg);
  buf_ += '}';
  failures_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
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

namespace {
// Copies a stream; unlike `out << in.rdbuf()`, an empty input is no error.
void copy(std::istream& in, std::ostream& out) {
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) out.write(buf, in.gcount());
}
}  // namespace

void pkdk_result_merger::write(std::ostream& out, std::istream& successes, std::istream& failures,
                               std::string_view msg) {
  std::string head = "{\"code\":200,\"msg\":";
  append_json_string(head, msg);
  head += ",\"extMsg\":null,\"data\":{\"successList\":[";
  out << head;
  copy(successes, out);
  out << "],\"failureList\":[";
  copy(failures, out);
  out << "]}}\n";
}

}  // namespace fleetcast
