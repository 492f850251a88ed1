// A job's output folder, shared by `fleetcast run` and the daemon:
// results.ndjson appended as batches complete, a journal of sends (so that a
// resumed run knows what an interrupted one may have sent), and at the end
// summary.json and result.json. Resuming keeps every final result and drops
// the lines of devices skipped because the run stopped, so they are sent
// again; results.ndjson keeps exactly one line per device.
#pragma once

#include "core/fsync_policy.hpp"
#include "core/run_summary.hpp"
#include "net/rollout.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fleetcast::app {

class job_output {
 public:
  // Opens `dir` (created if missing). With `resume`, reads the results there
  // and the journal; without it, a folder that already holds results is an
  // error (a second run must not mix with the first). False with `error`.
  bool open(const std::string& dir, bool resume, fsync_policy policy, std::string& error);

  // What the engine needs: skip what is done, mark what may have been sent,
  // journal each send. The sink to hand to the rollout.
  void attach(net::rollout_options& options);
  result_sink& sink();

  // Counts of the runs this one resumes (zero without resume).
  const run_summary& earlier() const noexcept;

  // Writes summary.json (totals with earlier runs, into `summary`) and
  // result.json; a problem with result.json is returned (empty when fine).
  std::string finish(run_summary& summary);

  job_output();
  ~job_output();
  job_output(const job_output&) = delete;
  job_output& operator=(const job_output&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::app
