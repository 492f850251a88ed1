// What a resumed run sends again (see resume_plan.hpp).
#include "core/output/resume_plan.hpp"

#include <fmt/format.h>

namespace fleetcast {
namespace {
constexpr std::uint32_t bit(outcome_reason r) {
  return 1u << static_cast<unsigned>(r);
}
}  // namespace

resume_plan::resume_plan() noexcept
    : mask_(bit(outcome_reason::cancelled) | bit(outcome_reason::job_failed) |
            bit(outcome_reason::aborted) | bit(outcome_reason::excluded)) {}

std::optional<std::string> resume_plan::retry_failed(std::string_view list) {
  if (list.empty()) list = default_retry_reasons;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    bool found = false;
    for (std::size_t i = 0; i < outcome_reason_count; ++i) {
      const auto r = static_cast<outcome_reason>(i);
      if (to_string(r) != name) continue;
      if (status_of(r) != device_status::failed) {
        return fmt::format(
            "--retry-failed: {} is not a failure (failures: device_failed, "
            "missing_in_answer, batch_rejected, transport_failed)",
            name);
      }
      mask_ |= bit(r);
      found = true;
    }
    if (!found) {
      return fmt::format(
          "--retry-failed: unknown reason \"{}\" (failures: device_failed, "
          "missing_in_answer, batch_rejected, transport_failed)",
          name);
    }
  }
  return std::nullopt;
}

}  // namespace fleetcast
