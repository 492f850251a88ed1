// Reading results.ndjson back (see result_log.hpp).
#include "core/output/result_log.hpp"

#include "core/input/device_object_parser.hpp"
#include "core/protocol/pkdk_result_merger.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace fleetcast {

namespace od = simdjson::ondemand;

struct result_log_reader::impl {
  od::parser parser;
};

result_log_reader::result_log_reader(std::istream& in)
    : impl_(std::make_unique<impl>()), lines_(in, 1 << 20, json_padding) {}
result_log_reader::~result_log_reader() = default;

namespace {

bool reason_from(std::string_view s, outcome_reason& out) {
  for (std::size_t i = 0; i < outcome_reason_count; ++i) {
    if (to_string(static_cast<outcome_reason>(i)) == s) {
      out = static_cast<outcome_reason>(i);
      return true;
    }
  }
  return false;
}

simdjson::error_code text(od::value v, std::string_view& out) {
  if (v.is_null()) {
    out = {};
    return simdjson::SUCCESS;
  }
  return v.get_string().get(out);
}

}  // namespace

bool result_log_reader::next(device_result& r) {
  line_reader::line line;
  for (;;) {
    if (!lines_.next(line)) return false;
    if (!line.terminated) return false;  // cut short: not a result
    if (line.too_long) {
      error_ = fmt::format("line {}: longer than any result line", line.number);
      return false;
    }
    if (!line.text.empty()) break;
    complete_bytes_ += 1;
  }
  r = {};
  od::document doc;
  od::object obj;
  bool have_index = false, have_reason = false;
  auto e = impl_->parser.iterate(line.text.data(), line.text.size(), line.readable).get(doc);
  if (!e) e = doc.get_object().get(obj);
  if (!e) {
    for (auto field_result : obj) {
      od::field field;
      std::string_view key;
      if ((e = std::move(field_result).get(field)) || (e = field.unescaped_key().get(key))) break;
      od::value v = field.value();
      if (key == "index") {
        e = v.get_uint64().get(r.index);
        have_index = !e;
      } else if (key == "productKey") {
        e = text(v, r.device.product_key);
      } else if (key == "deviceKey") {
        e = text(v, r.device.device_key);
      } else if (key == "gatewayProductKey") {
        e = text(v, r.device.gateway_product_key);
      } else if (key == "gatewayDeviceKey") {
        e = text(v, r.device.gateway_device_key);
      } else if (key == "reason") {
        std::string_view s;
        e = v.get_string().get(s);
        have_reason = !e && reason_from(s, r.reason);
      } else if (key == "ticket") {
        e = text(v, r.ticket);
      } else if (key == "msg") {
        e = text(v, r.msg);
      } else if (key == "code") {
        if (!v.is_null()) {
          std::int64_t c = 0;
          e = v.get_int64().get(c);
          r.code = c;
        }
      } else if (key == "attempts") {
        std::uint64_t a = 0;
        e = v.get_uint64().get(a);
        r.attempts = static_cast<std::uint32_t>(a);
      } else if (key == "uncertain") {
        e = v.get_bool().get(r.uncertain);
      }
      if (e) break;
    }
  }
  if (e || !have_index || !have_reason) {
    error_ = fmt::format("line {}: not a result line{}", line.number,
                         e ? fmt::format(" ({})", simdjson::error_message(e)) : "");
    return false;
  }
  complete_bytes_ += line.text.size() + 1 + (line.text.data()[line.text.size()] == '\r' ? 1 : 0);
  return true;
}

std::string merged_result_of(std::istream& results, std::string& out) {
  pkdk_result_merger merger;
  result_log_reader reader(results);
  device_result r;
  while (reader.next(r)) merger.add(r);
  if (!reader.error().empty()) return reader.error();
  out = merger.whole("merged by fleetcast");
  return {};
}

}  // namespace fleetcast
