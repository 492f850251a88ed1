// Record checks between a reader and the chunker (see device_stream.hpp).
#include "core/device_stream.hpp"

#include "core/device_hash.hpp"
#include "core/validation.hpp"

#include <fmt/format.h>

namespace fleetcast {
namespace {

std::string location(const device_record& r) {
  return r.line != 0 ? fmt::format("line {}", r.line) : fmt::format("devices[{}]", r.index);
}

std::string_view utf8_or_empty(std::string_view s) {
  return is_valid_utf8(s) ? s : std::string_view{};
}

}  // namespace

bool device_stream::next(device_record& record, record_kind& kind) {
  for (;;) {
    if (!reader_->next(record)) return false;
    if (!record.problem.empty()) {
      if (!shard_.owns_record(record.index)) continue;
      kind = record_kind::invalid;
      return true;
    }
    if (auto error = validate_device(record.device)) {
      if (!shard_.owns_record(record.index)) continue;
      kind = record_kind::invalid;
      record.problem = fmt::format("{}: {}", location(record), error->message);
      return true;
    }
    record.fingerprint = device_hash(record.device.product_key, record.device.device_key);
    if (shard_.owns_device(record.fingerprint)) break;
  }
  if (!seen_.insert(record.fingerprint)) {
    kind = record_kind::duplicate;
    record.problem =
        fmt::format("{}: duplicate of an earlier device (productKey {}, deviceKey {})",
                    location(record), record.device.product_key, record.device.device_key);
    return true;
  }
  kind = record_kind::device;
  return true;
}

device_result skip_result(const device_record& record, record_kind kind) {
  device_result r;
  r.index = record.index;
  // Keys that are not UTF-8 cannot go into JSON output; the message says why.
  r.device = {utf8_or_empty(record.device.product_key), utf8_or_empty(record.device.device_key),
              utf8_or_empty(record.device.gateway_product_key),
              utf8_or_empty(record.device.gateway_device_key)};
  r.reason =
      kind == record_kind::duplicate ? outcome_reason::duplicate : outcome_reason::invalid_record;
  r.msg = record.problem;
  return r;
}

}  // namespace fleetcast
