// spool_rules: the daemon's decisions about a job's folder in its spool,
// without touching the file system (the daemon gathers the facts, these
// rules decide, the daemon acts). Where a job that ended goes and why; whether
// a job in done/ or failed/ may be resumed or retried on request, and with
// which plan.
#pragma once

#include <fleetcast/core/output/run_summary.hpp>
#include "core/output/resume_plan.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

enum class spool_folder : std::uint8_t { running, done, failed };
std::string_view to_string(spool_folder f) noexcept;

// How a job's run ended, as the daemon saw it.
struct job_ending {
  job_state state = job_state::completed;
  std::string_view startup_error;  // non-empty: the job could not start
  bool cancelled_by_drain = false;
  bool cancelled_by_user = false;
  std::string_view failure;  // the rollout's own reason, when it failed or aborted
};

struct job_destination {
  spool_folder folder = spool_folder::done;
  std::string state;   // for logs, metrics and /jobs: completed, aborted, ..., failed
  std::string reason;  // reason.txt's text; empty for done/ and running/
};

// done/ when it completed; running/ when a drain stopped it (resumed at the
// next start); failed/ otherwise, with the reason.
job_destination destination_of(const job_ending& e);

// What the daemon knows of a job name when a resume is asked for.
struct job_folder_facts {
  bool active = false;           // waiting or running in this daemon
  bool request_pending = false;  // a resume or retry request not yet taken
  bool in_done = false;          // done/NAME exists
  bool in_failed = false;        // failed/NAME exists
  bool started = false;          // that folder holds a rollout record (rollout.json)
};

enum class resume_kind : std::uint8_t { resume, retry_failed };

struct resume_request {
  resume_kind kind = resume_kind::resume;
  std::string reasons;  // retry_failed: the reasons ("" = the defaults)
};

struct resume_verdict {
  bool accepted = false;
  spool_folder from = spool_folder::failed;  // where the job's folder is, when accepted
  int http_status = 202;                     // the admin port's answer
  std::string why;                           // when refused: one line for the operator
  resume_plan plan;                          // when accepted: what the resumed run sends
};

// A job in done/ (completed, perhaps with failures) or failed/ (aborted,
// cancelled, failed) goes back to running/ to continue with the semantics of
// `fleetcast run --resume` or `--retry-failed`. Refused: an unknown name
// (404), a job that never started or is already active (409), an unknown
// or non-failure reason (400).
resume_verdict judge_resume(std::string_view name, const job_folder_facts& facts,
                            const resume_request& request);

// The request of a control file: resume/NAME (its content is ignored) or
// retry-failed/NAME (its content, if any, is the reasons: "a,b", spaces and
// newlines ignored).
resume_request resume_request_of(resume_kind kind, std::string_view file_content);

}  // namespace fleetcast
