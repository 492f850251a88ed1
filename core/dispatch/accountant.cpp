// Batch accounting (see accountant.hpp).
#include "core/dispatch/accountant.hpp"

#include "core/input/device_hash.hpp"

#include <bit>

namespace fleetcast {
namespace {
// outcome_ encoding per batch position: none, a success entry i (i >= 0), or
// a failure entry i (stored as -2 - i).
constexpr std::int32_t no_outcome = -1;
}  // namespace

std::int32_t accountant::find(const batch& devices, const pkdk_view& d) {
  // Answers list devices in the order they were sent, as a rule: the
  // position after the last one found is tried first, and the index by
  // hash is built only when an answer strays from that order.
  const std::size_t n = devices.size();
  if (guess_ < n && devices.device(guess_).same_device(d))
    return static_cast<std::int32_t>(guess_++);
  if (!indexed_) {
    const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(2 * n, 8));  // load <= 1/2
    table_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t slot = devices.fingerprint(i) & mask_;  // hashed once, when read
      while (table_[slot] != 0) slot = (slot + 1) & mask_;
      table_[slot] = static_cast<std::uint32_t>(i + 1);
    }
    indexed_ = true;
  }
  for (std::size_t slot = device_hash(d.product_key, d.device_key) & mask_;;
       slot = (slot + 1) & mask_) {
    const std::uint32_t v = table_[slot];
    if (v == 0) return -1;
    if (devices.device(v - 1).same_device(d)) {
      guess_ = v;
      return static_cast<std::int32_t>(v - 1);
    }
  }
}

answer_anomalies accountant::account_answer(const batch& devices, const decoded_response& answer,
                                            result_sink& sink) {
  answer_anomalies anomalies;
  anomalies.entries_without_device = answer.entries_without_device;
  const std::size_t n = devices.size();

  guess_ = 0;
  indexed_ = false;
  outcome_.assign(n, no_outcome);

  auto mark = [&](const pkdk_view& d, std::int32_t code) {
    const std::int32_t pos = find(devices, d);
    if (pos < 0) {
      ++anomalies.unexpected_entries;
    } else if (outcome_[pos] != no_outcome) {
      ++anomalies.repeated_entries;
    } else {
      outcome_[pos] = code;
    }
  };
  for (std::size_t i = 0; i < answer.successes.size(); ++i) {
    mark(answer.successes[i].device, static_cast<std::int32_t>(i));
  }
  for (std::size_t i = 0; i < answer.failures.size(); ++i) {
    mark(answer.failures[i].device, -2 - static_cast<std::int32_t>(i));
  }

  for (std::size_t i = 0; i < n; ++i) {
    device_result r;
    r.index = devices.index(i);
    r.device = devices.device(i);
    r.attempts = devices.attempts(i);
    r.uncertain = devices.uncertain(i);
    r.code = answer.code;
    const std::int32_t o = outcome_[i];
    if (o >= 0) {
      r.reason = outcome_reason::accepted;
      r.ticket = answer.successes[o].ticket;
    } else if (o <= -2) {
      r.reason = outcome_reason::device_failed;
      r.msg = answer.failures[-2 - o].msg;
    } else {
      ++anomalies.missing_devices;
      r.reason = outcome_reason::missing_in_answer;
      r.uncertain = true;  // the request was executed; whether for this device, nobody said
      r.msg = "device in neither the successList nor the failureList of the answer";
    }
    sink.on_result(r);
  }
  return anomalies;
}

void accountant::account_all(const batch& devices, outcome_reason reason,
                             std::optional<std::int64_t> code, std::string_view msg,
                             result_sink& sink) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    device_result r;
    r.index = devices.index(i);
    r.device = devices.device(i);
    r.reason = reason;
    r.code = code;
    r.msg = msg;
    r.attempts = devices.attempts(i);
    r.uncertain = devices.uncertain(i);
    sink.on_result(r);
  }
}

}  // namespace fleetcast
