// accountant: turns one batch and its answer (or a batch-level failure) into
// exactly one device_result per device of the batch. Answers are matched to
// devices by productKey+deviceKey, whatever their order; devices in neither
// list fail with missing_in_answer; entries for devices not asked for, or a
// device named twice, are counted and ignored. One accountant per
// connection: its lookup table is reused, so accounting allocates nothing per
// device once warm.
#pragma once

#include <fleetcast/core/dispatch/batch.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include "core/protocol/response_decoder.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace fleetcast {

// What an answer said beyond the devices of the batch.
struct answer_anomalies {
  std::size_t unexpected_entries = 0;      // devices that were not in the batch
  std::size_t repeated_entries = 0;        // a device named again (first mention wins)
  std::size_t entries_without_device = 0;  // list entries with no device at all
  std::size_t missing_devices = 0;         // batch devices in neither list
};

class accountant {
 public:
  // Accounts a decoded 200 answer for `devices`; every device of the batch
  // reaches `sink` exactly once, in batch order.
  answer_anomalies account_answer(const batch& devices, const decoded_response& answer,
                                  result_sink& sink);

  // Every device of the batch gets the same final outcome (a refused request,
  // a transport failure after the last attempt, a skip).
  static void account_all(const batch& devices, outcome_reason reason,
                          std::optional<std::int64_t> code, std::string_view msg,
                          result_sink& sink);

 private:
  // The batch position of `d`, or -1.
  std::int32_t find(const batch& devices, const pkdk_view& d);

  std::vector<std::uint32_t> table_;   // open addressing: batch position + 1, 0 = empty
  std::vector<std::int32_t> outcome_;  // per batch position: entry index, see .cpp
  std::size_t mask_ = 0;
  std::size_t guess_ = 0;  // the position tried first: after the last one found
  bool indexed_ = false;   // table_ holds this batch
};

}  // namespace fleetcast
