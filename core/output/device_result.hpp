// device_result: the final outcome of one input device, one line of
// results.ndjson. Views only: a result is written out as soon as it is made.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

enum class device_status : std::uint8_t { succeeded, failed, skipped };

// Why a device ended as it did; summary.json counts devices by reason.
enum class outcome_reason : std::uint8_t {
  accepted,           // succeeded: in the answer's successList
  device_failed,      // failed: in the answer's failureList (msg says why)
  missing_in_answer,  // failed: asked for, but in neither list of a 200 answer
  batch_rejected,     // failed: the whole request was refused with a body code
  transport_failed,   // failed: no usable answer after the last attempt
  invalid_record,     // skipped: the input record is not a valid device
  duplicate,          // skipped: productKey+deviceKey seen earlier in the input
  aborted,            // skipped: the rollout was aborted before it was sent
  cancelled,          // skipped: the job was cancelled or stopped before it was sent
  job_failed,         // skipped: the job failed (e.g. token refused) before it was sent
  excluded,           // skipped: its cohort broke a rule (rollout.on_cohort_failure "exclude")
};
inline constexpr std::size_t outcome_reason_count = 11;

std::string_view to_string(device_status s) noexcept;
std::string_view to_string(outcome_reason r) noexcept;
device_status status_of(outcome_reason r) noexcept;

struct device_result {
  std::uint64_t index = 0;  // 0-based position among the input's records
  pkdk_view device;
  outcome_reason reason = outcome_reason::accepted;
  std::string_view ticket;           // succeeded: the platform's ticket
  std::optional<std::int64_t> code;  // the answer's body code, when there was one
  std::string_view msg;              // failure or skip message
  std::uint32_t attempts = 0;        // requests that carried this device
  bool uncertain = false;            // an earlier attempt may have reached it too

  device_status status() const noexcept { return status_of(reason); }
};

// Appends one results.ndjson line (with its newline).
void append_result_line(std::string& out, const device_result& r);

// Receives results as they are made (a file writer, a counter, a test).
class result_sink {
 public:
  virtual ~result_sink() = default;
  virtual void on_result(const device_result& r) = 0;
  // A batch's results are all in: a good moment to write them out.
  virtual void flush() {}
  // Why results can no longer be kept (e.g. a full disk), empty while they
  // can: the engine stops the job, failed, when it is not.
  virtual std::string_view failure() const noexcept { return {}; }
};

}  // namespace fleetcast
