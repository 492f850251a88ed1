// A job's output folder, shared by `fleetcast run` and the daemon:
// results.ndjson appended as batches complete, a journal of sends (so that a
// resumed run knows what an interrupted one may have sent), rollout.json
// (what the rollout is: device list digest, endpoint, command), a lock that
// keeps a second process out, and at the end summary.json and result.json.
//
// Resuming keeps every final result and drops the lines of the devices it
// sends again (those a stop skipped, and the failures --retry-failed names);
// their attempts and uncertainty carry over into their new line, so
// results.ndjson keeps exactly one line per device. Every write is checked:
// a full disk stops the run (state failed), and what was written stays a
// correct starting point for --resume.
#pragma once

#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/output/run_summary.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/core/output/fsync_policy.hpp>
#include "core/output/resume_plan.hpp"
#include "core/output/rollout_manifest.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fleetcast::net {

struct output_request {
  bool resume = false;
  resume_plan plan;  // with resume: what is sent again
  fsync_policy fsync;
  rollout_manifest identity;  // what this run is
};

enum class open_outcome {
  ok,
  refused,  // another process holds the folder, results without --resume, a different rollout
  failed,   // the folder cannot be read or written (full disk, permissions)
};

class job_output {
 public:
  // Opens `dir` (created if missing) and locks it for this process. With
  // resume, reads the results there and the journal and checks the rollout
  // is the one recorded; without it, a folder that already holds results is
  // refused (a second run must not mix with the first). `error` says why.
  open_outcome open(const std::string& dir, const output_request& request, std::string& error);

  // After open() found earlier results (needs_verify()): reads the device
  // list once (a fresh stream over it) and checks that every kept result
  // names the record at its index and no index lies beyond the list
  // (refused, `error` naming the first line). Only when it passes does the
  // folder change (the results of the devices sent again are dropped, the
  // writers open): a refused resume leaves every file as it was.
  open_outcome verify(device_stream& devices, std::string& error);
  bool needs_verify() const noexcept;

  // What the engine needs: skip what is done, mark what may have been sent,
  // journal each send. The sink to hand to the rollout.
  void attach(net::rollout_options& options);
  result_sink& sink();

  // A run that stopped before sending anything (its start-up failed): when
  // the folder held no results before, it is left as if never used (removed
  // when this run made it).
  void abandon();

  // Counts of the runs this one resumes (zero without resume).
  const run_summary& earlier() const noexcept;

  // Completes `summary` with the earlier runs (counts, requests, retries,
  // runs), writes result.json and summary.json (each to a temporary file,
  // then renamed), and returns what went wrong (empty when fine); on a
  // problem the summary's state becomes failed.
  std::string finish(run_summary& summary);

  job_output();
  ~job_output();
  job_output(const job_output&) = delete;
  job_output& operator=(const job_output&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::net
