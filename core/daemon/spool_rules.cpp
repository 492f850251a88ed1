#include "core/daemon/spool_rules.hpp"

#include <fmt/format.h>

namespace fleetcast {

std::string_view to_string(spool_folder f) noexcept {
  switch (f) {
    case spool_folder::running:
      return "running";
    case spool_folder::done:
      return "done";
    case spool_folder::failed:
      return "failed";
  }
  return "failed";
}

job_destination destination_of(const job_ending& e) {
  job_destination d;
  d.state = std::string(to_string(e.state));
  if (!e.startup_error.empty()) {
    d.folder = spool_folder::failed;
    d.state = "failed";
    d.reason = fmt::format("the job could not start: {}", e.startup_error);
  } else if (e.state == job_state::cancelled && e.cancelled_by_drain && !e.cancelled_by_user) {
    d.folder = spool_folder::running;
  } else if (e.state == job_state::completed) {
    d.folder = spool_folder::done;
  } else {
    d.folder = spool_folder::failed;
    d.reason = e.state == job_state::cancelled && e.cancelled_by_user ? "cancelled by request"
               : !e.failure.empty()                                   ? std::string(e.failure)
                                                                      : d.state;
  }
  return d;
}

resume_verdict judge_resume(std::string_view name, const job_folder_facts& facts,
                            const resume_request& request) {
  resume_verdict v;
  auto refuse = [&](int status, std::string why) {
    v.http_status = status;
    v.why = std::move(why);
    return v;
  };
  if (request.kind == resume_kind::retry_failed) {
    if (auto problem = v.plan.retry_failed(request.reasons)) return refuse(400, *problem);
  }
  if (facts.active) return refuse(409, fmt::format("{} is waiting or running already", name));
  if (facts.request_pending)
    return refuse(409, fmt::format("a resume of {} is already requested", name));
  if (!facts.in_done && !facts.in_failed)
    return refuse(404, fmt::format("no job {} in done/ or failed/", name));
  if (facts.in_done && facts.in_failed) {
    // Names are unique across the folders; two of one name were put there by hand.
    return refuse(409, fmt::format("{} is in both done/ and failed/: remove one", name));
  }
  if (!facts.started) {
    return refuse(409, fmt::format("{} never started (it was invalid): correct it and drop it "
                                   "into incoming/ again",
                                   name));
  }
  v.accepted = true;
  v.from = facts.in_done ? spool_folder::done : spool_folder::failed;
  return v;
}

resume_request resume_request_of(resume_kind kind, std::string_view file_content) {
  resume_request r;
  r.kind = kind;
  if (kind == resume_kind::retry_failed) {
    for (char c : file_content)
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') r.reasons += c;
  }
  return r;
}

}  // namespace fleetcast
