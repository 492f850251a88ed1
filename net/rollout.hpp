// rollout: the dispatch engine. Streams a job's devices into batches, sends
// them over a pool of keep-alive HTTP/1.1 connections (TLS verified against
// the system trust store or the job's CA file, SNI, host-name check, TLS 1.2
// or newer, sessions resumed on reconnect) under the job's rate limits,
// retries what may be retried, and reports every input record to a
// result_sink exactly once.
//
// Use from C++:
//   fleetcast::net::rollout r(job, devices, sink);   // any device_stream, any sink
//   std::thread t([&] { summary = r.run(); });        // or run() on this thread
//   r.cancel();                                       // from any thread, any time
//
// Lifetime: `job`, `devices` and `sink` must outlive run(). run() may be
// called once. cancel() is safe from any thread and from the sink.
#pragma once

#include "core/batch.hpp"
#include "core/device_result.hpp"
#include "core/device_stream.hpp"
#include "core/dispatch/dispatch_progress.hpp"
#include "core/job.hpp"
#include "core/run_summary.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fleetcast::net {

using rollout_progress = fleetcast::dispatch_progress;

struct rollout_options {
  // PEM certificates trusted besides the job's (e.g. a local emulator's).
  std::string extra_ca_pem;
  // Whether the system's CA store is trusted when the job names no
  // tls.ca_file. Off for a target whose certificate is extra_ca_pem (the
  // in-process emulator): loading the store takes 10 to 20 ms of start-up.
  bool system_trust_store = true;
  // Called on the engine's thread about every 250 ms, and once at the end.
  std::function<void(const rollout_progress&)> on_progress;
  // For --resume: records that already have a result are not sent (and not
  // reported again); records an earlier run may have sent are uncertain.
  std::function<bool(std::uint64_t index)> already_done;
  std::function<bool(std::uint64_t index)> maybe_sent;
  // Called before a batch is written to the network, with its indices (for
  // a journal that makes --resume mark them uncertain after a crash). A
  // non-empty return is why it cannot be recorded: the batch is not sent and
  // the job fails with that reason.
  std::function<std::string(const batch&)> before_send;
  // Called on the engine's thread for each answered request, with the time
  // from its write to its answer (for latency histograms).
  std::function<void(std::int64_t micros)> on_answer;
  // Called on the engine's thread after each try of a batch with what came
  // of it ("accounted", "throttled", "resent", "no_answer", "not_sent",
  // "split_too_long", "split_permission", "token_refused", "batch_rejected",
  // "failed_unknown", "job_failed") and the batch's size.
  std::function<void(std::string_view outcome, std::size_t devices)> on_attempt;
  // A rate limit shared with other rollouts (a daemon's account-wide limit):
  // called once per request, returns when that request may go. Must be
  // thread-safe if shared between threads.
  std::function<std::chrono::steady_clock::time_point()> shared_gate;
  // The largest answer body read (a larger one is an unreadable answer,
  // not an out-of-memory); 0: the job's max_answer_bytes.
  std::size_t max_answer_bytes = 0;
};

class rollout {
 public:
  rollout(const job& j, device_stream& devices, result_sink& sink, rollout_options options = {});
  ~rollout();
  rollout(const rollout&) = delete;
  rollout& operator=(const rollout&) = delete;

  // Runs the rollout on the calling thread until every record has a result.
  // Before the fleet is read it gets a token and opens one connection; an
  // endpoint that cannot be reached within the retry policy fails the job
  // (every device skipped, job_failed). Throws std::runtime_error only for
  // start-up failures (no token, a CA file that cannot be read); everything
  // after start is reported in results and in the summary's state
  // (completed, aborted, cancelled, failed) and failure().
  run_summary run();

  // Stops sending: requests in flight finish and are recorded, everything
  // not yet sent is recorded skipped (cancelled). A second call also cuts the
  // requests in flight (their devices follow unknown_outcome). Thread-safe.
  void cancel();

  // Why the job failed (state failed), e.g. a refused token; empty otherwise.
  const std::string& failure() const noexcept;

  // How the endpoint is reached: "through the proxy host:port (HTTPS_PROXY)",
  // or empty for a direct connection. Never the proxy's user or password.
  std::string route() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::net
