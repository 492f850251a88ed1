// resume_plan: which earlier outcomes a resumed run sends again. Devices
// without a result, and those skipped because the run stopped (cancelled,
// job_failed, aborted), always; failures only for the reasons named with
// --retry-failed. Everything else keeps its result.
#pragma once

#include <fleetcast/core/output/device_result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

class resume_plan {
 public:
  // The reasons --retry-failed takes with no list.
  static constexpr std::string_view default_retry_reasons =
      "transport_failed,missing_in_answer,batch_rejected";

  resume_plan() noexcept;
  // Adds the failure reasons of a comma-separated list ("" = the defaults);
  // an unknown name or a reason that is not a failure is an error naming it.
  std::optional<std::string> retry_failed(std::string_view list);

  // Whether a device with this earlier outcome is sent again.
  bool sends_again(outcome_reason r) const noexcept {
    return mask_ >> static_cast<unsigned>(r) & 1;
  }

 private:
  std::uint32_t mask_;
};

}  // namespace fleetcast
