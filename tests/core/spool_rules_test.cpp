// The daemon's spool decisions: where an ended job goes, and which resume
// and retry requests are taken.
#include "core/daemon/spool_rules.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("an ended job goes to done/, failed/ with its reason, or stays in running/") {
  job_ending e;
  auto d = destination_of(e);
  CHECK(d.folder == spool_folder::done);
  CHECK(d.state == "completed");
  CHECK(d.reason.empty());

  e.state = job_state::cancelled;
  e.cancelled_by_drain = true;
  d = destination_of(e);
  CHECK(d.folder == spool_folder::running);  // resumed at the next start
  CHECK(d.state == "cancelled");

  e.cancelled_by_user = true;  // a cancel request during a drain is still a cancel
  d = destination_of(e);
  CHECK(d.folder == spool_folder::failed);
  CHECK(d.reason == "cancelled by request");

  e = {};
  e.state = job_state::aborted;
  e.failure = "the canary failed: 3 of 10 devices";
  d = destination_of(e);
  CHECK(d.folder == spool_folder::failed);
  CHECK(d.state == "aborted");
  CHECK(d.reason == "the canary failed: 3 of 10 devices");

  e.failure = {};
  d = destination_of(e);
  CHECK(d.reason == "aborted");  // never an empty reason.txt

  // A cancel asked for while the job failed on its own: the failure is the reason.
  e.state = job_state::failed;
  e.failure = "the token was refused (5032)";
  e.cancelled_by_user = true;
  d = destination_of(e);
  CHECK(d.folder == spool_folder::failed);
  CHECK(d.reason == "the token was refused (5032)");

  e = {};
  e.startup_error = "devices.csv: no such file";
  d = destination_of(e);
  CHECK(d.folder == spool_folder::failed);
  CHECK(d.state == "failed");
  CHECK(d.reason == "the job could not start: devices.csv: no such file");
}

TEST_CASE("a stopped or finished job is resumed from its folder") {
  job_folder_facts f;
  f.in_failed = true;
  f.started = true;
  auto v = judge_resume("j", f, {});
  CHECK(v.accepted);
  CHECK(v.from == spool_folder::failed);
  // Plain resume: the stopped ones again, never a failure.
  CHECK(v.plan.sends_again(outcome_reason::aborted));
  CHECK(v.plan.sends_again(outcome_reason::cancelled));
  CHECK(v.plan.sends_again(outcome_reason::job_failed));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::transport_failed));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::device_failed));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::accepted));

  f = {};
  f.in_done = true;
  f.started = true;
  v = judge_resume("j", f, resume_request_of(resume_kind::retry_failed, ""));
  CHECK(v.accepted);
  CHECK(v.from == spool_folder::done);
  CHECK(v.plan.sends_again(outcome_reason::transport_failed));
  CHECK(v.plan.sends_again(outcome_reason::missing_in_answer));
  CHECK(v.plan.sends_again(outcome_reason::batch_rejected));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::device_failed));

  v = judge_resume("j", f, resume_request_of(resume_kind::retry_failed, " device_failed\n"));
  CHECK(v.accepted);
  CHECK(v.plan.sends_again(outcome_reason::device_failed));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::transport_failed));
  CHECK_FALSE(v.plan.sends_again(outcome_reason::accepted));
}

TEST_CASE("resume requests that cannot be taken are refused with the reason") {
  const job_folder_facts stopped{false, false, false, true, true};
  struct refusal {
    job_folder_facts facts;
    resume_request request;
    int status;
    const char* says;
  };
  const refusal cases[] = {
      {{}, {}, 404, "no job j in done/ or failed/"},
      {{true, false, false, true, true}, {}, 409, "waiting or running already"},
      {{false, true, false, true, true}, {}, 409, "already requested"},
      {{false, false, false, true, false}, {}, 409, "never started"},
      {{false, false, true, true, true}, {}, 409, "both done/ and failed/"},
      {stopped, {resume_kind::retry_failed, "acepted"}, 400, "unknown reason \"acepted\""},
      {stopped, {resume_kind::retry_failed, "accepted"}, 400, "accepted"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.says);
    const auto v = judge_resume("j", c.facts, c.request);
    CHECK_FALSE(v.accepted);
    CHECK(v.http_status == c.status);
    CHECK(v.why.find(c.says) != std::string::npos);
  }
  // The reasons are checked first: a bad request is 400 whatever the folder.
  CHECK(judge_resume("j", {}, {resume_kind::retry_failed, "nope"}).http_status == 400);
  // A plain resume file's content is not read as reasons.
  CHECK(resume_request_of(resume_kind::resume, "device_failed").reasons.empty());
}
