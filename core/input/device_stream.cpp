// Record checks between a reader and the chunker (see device_stream.hpp).
#include <fleetcast/core/input/device_stream.hpp>

#include "core/input/device_hash.hpp"
#include "core/protocol/validation.hpp"

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

bool device_stream::read_checked(device_record& r, record_kind& kind) {
  for (;;) {
    if (!reader_->next(r)) return false;
    if (!r.problem.empty()) {
      if (!shard_.owns_record(r.index) || !invalid_too_) continue;
      kind = record_kind::invalid;
      return true;
    }
    if (auto error = validate_device(r.device, &r.device.plain)) {
      if (!shard_.owns_record(r.index) || !invalid_too_) continue;
      kind = record_kind::invalid;
      r.problem = fmt::format("{}: {}", location(r), error->message);
      return true;
    }
    r.fingerprint = device_hash(r.device.product_key, r.device.device_key);
    if (!shard_.owns_device(r.fingerprint)) continue;
    if (keep_ && !keep_(r.device, r.fingerprint)) continue;
    kind = record_kind::device;
    return true;
  }
}

void device_stream::check_duplicate(device_record& record, record_kind& kind) {
  if (kind != record_kind::device || seen_.insert(record.fingerprint)) return;
  kind = record_kind::duplicate;
  record.problem =
      fmt::format("{}: duplicate of an earlier device (productKey {}, deviceKey {})",
                  location(record), record.device.product_key, record.device.device_key);
}

bool device_stream::stage(staged& s) {
  device_record& r = scratch_;
  if (!read_checked(r, s.kind)) return false;
  if (s.kind == record_kind::device) seen_.prefetch(r.fingerprint);
  // Own the keys: the reader's views end at its next record.
  const auto& d = r.device;
  s.keys.clear();
  s.keys.append(d.product_key)
      .append(d.device_key)
      .append(d.gateway_product_key)
      .append(d.gateway_device_key);
  const char* k = s.keys.data();
  auto view = [&k](std::size_t n) {
    std::string_view v(k, n);
    k += n;
    return v;
  };
  s.record.index = r.index;
  s.record.line = r.line;
  s.record.fingerprint = r.fingerprint;
  s.record.problem.swap(r.problem);
  s.record.device.product_key = view(d.product_key.size());
  s.record.device.device_key = view(d.device_key.size());
  s.record.device.gateway_product_key = view(d.gateway_product_key.size());
  s.record.device.gateway_device_key = view(d.gateway_device_key.size());
  return true;
}

void device_stream::restart(std::unique_ptr<device_reader> reader) {
  reader_ = std::move(reader);
  seen_.clear();
  head_ = count_ = 0;
  input_end_ = false;
}

bool device_stream::next(device_record& record, record_kind& kind) {
  // While the filter fits in the caches, records go straight through; once
  // it does not, they are read a few ahead and their slots prefetched (the
  // ring is empty at the switch: order is kept).
  if (expected_ != 0) {  // the first call: the hint, applied once the shard is known
    seen_.reserve(expected_ / shard_.count);
    expected_ = 0;
  }
  if (!read_ahead_ && seen_.memory_bytes() >= read_ahead_bytes) read_ahead_ = true;
  if (!read_ahead_) {
    if (!read_checked(record, kind)) return false;
    check_duplicate(record, kind);
    return true;
  }
  while (!input_end_ && count_ < ahead) {
    if (!stage(ring_[(head_ + count_) % ahead])) {
      input_end_ = true;
      break;
    }
    ++count_;
  }
  if (count_ == 0) return false;
  staged& s = ring_[head_];
  head_ = (head_ + 1) % ahead;
  --count_;
  record.index = s.record.index;
  record.line = s.record.line;
  record.fingerprint = s.record.fingerprint;
  record.device = s.record.device;  // views into s.keys: valid until the next call
  record.problem.swap(s.record.problem);
  kind = s.kind;
  check_duplicate(record, kind);
  return true;
}

std::uint64_t estimate_records(std::string_view sample, std::uint64_t total_bytes,
                               device_format format) noexcept {
  const char mark = format == device_format::json_array ? '{' : '\n';
  std::uint64_t marks = 0;
  for (char c : sample) marks += c == mark;
  if (marks < 16 || sample.empty()) return 0;
  return static_cast<std::uint64_t>(static_cast<double>(total_bytes) * static_cast<double>(marks) /
                                    static_cast<double>(sample.size()));
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
