// session: one crash-safe rollout into an output folder, what `fleetcast run`
// does, as a library type. It takes a job (its devices from a file or held
// in memory) and does, in order:
//   1. open(): identifies the rollout (the device list's digest, the
//      endpoint, the command), opens the job's output_dir, locks it against
//      a second process, checks the rollout record (rollout.json) on a
//      resume, reads the kept results and checks each still names the
//      record at its index, opens the devices, and for a job with acks its
//      delivery journal. A refusal changes nothing in the folder.
//   2. async_run(): with acks, waits until their source can be relied on
//      (nothing is sent before), runs the engine (rollout) with the folder's
//      hooks: every batch journalled before it is written, every result
//      appended to results.ndjson as it comes; with acks, waits for the
//      acknowledgements after the last answer (at most acks.timeout_s each);
//      then writes result.json and summary.json (each to a temporary file,
//      then renamed). A run that sent nothing leaves the folder as it found it.
// An interrupted session (a cancel, a crash, a kill) is continued by another
// with `resume`: what has a final result is never sent again, what may have
// been sent is marked uncertain, never silently resent.
//
//   fleetcast::net::session_options o;
//   o.resume = true;  // continue what the folder records (a first run: false)
//   fleetcast::net::session s(ex, job, std::move(o));
//   s.async_run([](error_code ec, fleetcast::net::session_outcome o) { ... });
//   auto [ec, o] = co_await s.async_run(asio::as_tuple(asio::use_awaitable));
//
// Threads: the session runs on a strand of its own over the given executor
// (any: an io_context's, a thread_pool's). Every hook (the rollout options'
// and the session's) is called on it, one at a time. open() is synchronous
// file work, called before async_run (or by it). cancel() is safe from any
// thread. The completion handler is called on its associated executor
// (the given one when it has none), whose work is kept until then.
// Lifetime: the job and the session must outlive the completion. A session
// runs once. The folder stays locked from open() until the session is
// destroyed (a resume in the same process makes a session after that).
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/input/shard.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/fsync_policy.hpp>
#include <fleetcast/core/output/run_summary.hpp>
#include <fleetcast/net/client/rollout.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace fleetcast::net {

struct amqp_receiver_config;
class subscription_hub;

struct session_options {
  // Continue the rollout recorded in the folder: kept results stay, the
  // rest is sent (the folder must hold the same rollout: list, endpoint,
  // command). Without it, a folder that holds results is refused.
  bool resume = false;
  // With resume: the failures sent again, by reason ("" for the defaults:
  // transport_failed, missing_in_answer, batch_rejected; else a comma list
  // of failure reasons).
  std::optional<std::string> retry_failed;
  // Only this shard's devices (the folder is the caller's: `fleetcast run`
  // gives each shard output_dir/shard-I-of-N).
  std::optional<shard_spec> shard;
  // The rollout record names "emulator" as the endpoint (a rehearsal).
  bool emulated = false;
  // When results.ndjson and the send journal reach the disk (fdatasync):
  // what is written survives a crash of the process in every case; this
  // is about power loss. Default: left to the kernel.
  fsync_policy fsync;
  // The engine's options: trust, tokens, progress, a shared pool or gate.
  // Its already_done, maybe_sent and before_send are the session's own.
  rollout_options rollout;
  // A cancel before anything was sent (during the wait for the acks'
  // subscription, or before async_run): false, the session completes with
  // session_errc::stopped and the folder as it was; true, the engine still
  // runs and ends at once, every device recorded skipped (cancelled), so the
  // rollout is on record and resumable (the daemon's jobs).
  bool record_early_cancel = false;
  // What the operator should hear about the acknowledgements' source (a
  // file truncated or replaced, a line refused, the early table full).
  std::function<void(const std::string& text)> on_notice;
  // Each delivery outcome as it is decided (before it is journalled).
  std::function<void(const delivery_event&)> on_delivery;
  // With acks: once, when the last answer came and the wait begins.
  std::function<void()> on_acks_wait;
  // With an AMQP subscription: a connection shared with other sessions
  // (the daemon's, one per subscription and credentials), or null for one
  // of the session's own. Called in open() with the subscription as read.
  std::function<subscription_hub*(const amqp_receiver_config&)> share_subscription;
  // Each operator's act (approve, pause, continue) once decided, with who
  // asked: from act(), or from a request another process wrote into the
  // folder (`fleetcast approve DIR`; net/session/operator_requests.hpp),
  // taken about every 250 ms. Every act is also recorded in
  // DIR/operator.ndjson.
  std::function<void(const act_request&, const act_result&)> on_act;
};

// Why a session sent nothing (the completion's error_code, category
// "fleetcast.session"; the engine's start-up failures keep their
// rollout_errc). The outcome's `error` says what, naming the file.
enum class session_errc : int {
  invalid_request = 1,  // retry_failed names no known reason
  devices = 2,          // the device list cannot be read or opened
  folder_refused = 3,   // another process holds it, results without resume, another rollout
  folder_failed = 4,    // the folder cannot be read or written (permissions, a full disk)
  acks_source = 5,      // the acknowledgements' source cannot be opened or relied on
  stopped = 6,          // cancelled before anything was sent
};
const boost::system::error_category& session_category() noexcept;
inline boost::system::error_code make_error_code(session_errc e) noexcept {
  return {static_cast<int>(e), session_category()};
}

// How a session ended.
struct session_outcome {
  // The whole rollout's counts, earlier runs included: summary.json's.
  run_summary summary;
  // Why nothing was sent (the error_code says which kind); empty once started.
  std::string error;
  // Why the job failed (the summary's state failed), e.g. a refused token.
  std::string failure;
  // The delivery outcomes, or the outputs, could not be written (the state
  // is then failed; what was written is a correct start for a resume).
  std::string deliveries_problem, outputs_problem;
  // The time from the last answer (or the acks wait's end) to every
  // output written.
  double writing_s = 0;
  bool started() const noexcept { return error.empty(); }
};

class session {
 public:
  session(boost::asio::any_io_executor ex, const job& j, session_options options = {});
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // Step 1 (async_run does it when it was not done): opens and checks the
  // folder and the devices. An error_code (session_errc) with `error` when
  // it refuses; nothing in the folder changed then.
  boost::system::error_code open(std::string& error);

  // After open(): the kept results (zero without resume); the devices that
  // wait for an acknowledgement since an earlier run; the list's records,
  // estimated (0: not known); how the endpoint is reached ("" direct).
  const run_summary& earlier() const noexcept;
  const std::string& devices_name() const noexcept;  // the list's file, or "devices (inline)"
  bool acks_enabled() const noexcept;
  std::uint64_t acks_expected() const noexcept;
  std::uint64_t estimated_total() const noexcept;
  std::string route() const;

  // While the acks wait (from on_acks_wait on, on the session's strand or a
  // single-threaded executor's thread): devices still waiting, the outcomes
  // so far, the seconds until the last wait ends.
  std::uint64_t acks_waiting() const noexcept;
  const delivery_counts& deliveries() const noexcept;
  double acks_seconds_left() const noexcept;
  std::string acks_source_state() const;  // the subscription's state ("" for a stream)

  // Step 2: completes with (error_code, session_outcome) once every output
  // is written, or at once when nothing could be sent. Per-operation
  // cancellation as cancel() (a terminal one: twice). Default token:
  // asio::deferred.
  using completion_signature = void(boost::system::error_code, session_outcome);
  template <typename CompletionToken = boost::asio::deferred_t>
  auto async_run(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, completion_signature>(
        [this](auto handler) {
          start(boost::asio::any_completion_handler<completion_signature>(std::move(handler)));
        },
        token);
  }

  // An operator's act on the running rollout (approve a phase waiting for
  // an approval, pause, continue), `by` whoever asked (recorded in
  // DIR/operator.ndjson with the time); `done` on the session's strand with
  // what came of it. Thread-safe.
  void act(operator_act a, std::string by, std::function<void(act_result)> done = {});

  // Stops: nothing more is sent (in-flight requests finish and are
  // recorded, the rest recorded skipped), the acks wait ends (what still
  // waits is left to a resume). A second call also cuts requests in flight.
  // Thread-safe.
  void cancel();

  struct impl;

 private:
  void start(boost::asio::any_completion_handler<completion_signature> handler);
  std::shared_ptr<impl> impl_;
};

}  // namespace fleetcast::net

template <>
struct boost::system::is_error_code_enum<fleetcast::net::session_errc> : std::true_type {};
