// rollout: the dispatch engine. Streams a job's devices into batches, sends
// them over a pool of keep-alive HTTP/1.1 connections (TLS verified against
// the system trust store or the job's CA file, SNI, host-name check, TLS 1.2
// or newer, sessions resumed on reconnect) under the job's rate limits,
// retries what may be retried, and reports every input record to a
// result_sink exactly once.
//
// Use from C++, on any executor of yours (an io_context's, a thread_pool's,
// a strand's):
//   fleetcast::net::rollout r(ex, job, devices, sink);
//   r.async_run([](error_code ec, fleetcast::net::rollout_outcome o) { ... });
//   r.async_run(asio::bind_cancellation_slot(signal.slot(), handler));  // cancellable
//   auto [ec, o] = co_await r.async_run(asio::as_tuple(asio::use_awaitable));
//   r.async_run()(handler);  // the default token, asio::deferred
// or blocking, on an io_context of its own:
//   fleetcast::net::rollout r(job, devices, sink);
//   run_summary s = r.run();                      // r.cancel() from any thread
//
// Threads: the engine runs on a strand of its own over the given executor,
// so a multi-threaded executor needs no strand of the caller's. The device
// stream, the sink and every hook of rollout_options are called on that
// strand, one at a time, never two at once (on whichever thread of the
// executor runs it). The completion handler is called on its associated
// executor (the given one when it has none), whose work is kept until then.
//
// Lifetime: `job`, `devices`, `sink` and the rollout must outlive the run's
// completion. A rollout runs once. cancel() is safe from any thread and
// from the sink.
#pragma once

#include <fleetcast/core/acks/delivery_tracker.hpp>
#include <fleetcast/core/dispatch/batch.hpp>
#include <fleetcast/core/dispatch/dispatch_progress.hpp>
#include <fleetcast/core/dispatch/phase_plan.hpp>
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/core/output/operator_act.hpp>
#include <fleetcast/core/output/run_summary.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace fleetcast::net {

using rollout_progress = fleetcast::dispatch_progress;

// A TLS client context: the trust store is loaded once and every
// connection of the rollouts that share it uses it (one per process, or one
// per endpoint and TLS setting in the daemon). Thread-safe to share.
class tls_client {
 public:
  // The job's settings (tls.verify, tls.ca_file; the system store when it
  // names none and `system_trust_store`), plus `extra_ca_pem`. Null, with
  // `error` naming what cannot be loaded, when it cannot be made.
  static std::shared_ptr<tls_client> make(const tls_config& tls, std::string& error,
                                          std::string_view extra_ca_pem = {},
                                          bool system_trust_store = true);
  ~tls_client();
  struct impl;
  impl& get() noexcept { return *impl_; }

 private:
  explicit tls_client(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// Connections to one endpoint kept open between rollouts (the daemon keeps
// one per endpoint): a rollout given a pool takes idle connections from it
// before it opens new ones, and gives its connections back when it ends,
// so the next rollout to that endpoint writes its first request without a
// handshake. An idle connection is dropped after `idle_timeout`, or when
// the server has closed it. Its rollouts run on one executor (one thread)
// and share endpoint, TLS settings and proxy. A pool is not thread-safe:
// the rollouts that share it must run on one single-threaded executor (as
// the daemon's jobs do on its loop).
class connection_pool {
 public:
  explicit connection_pool(std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;
  std::uint64_t opened() const noexcept;  // connections its rollouts opened
  std::uint64_t reused() const noexcept;  // idle connections handed out again
  std::size_t idle() const noexcept;
  void close_idle() noexcept;
  struct impl;
  impl& get() noexcept { return *impl_; }

 private:
  std::unique_ptr<impl> impl_;
};

// Why a run could not start (the completion's error_code, category
// "fleetcast.rollout"): nothing was sent and no result recorded.
enum class rollout_errc : int {
  proxy_setting = 1,  // the proxy setting (the job's or the environment's) cannot be used
  no_token = 2,       // the first token could not be had (its file, variable, command, refresh)
  tls_setup = 3,      // the TLS context cannot be made (a CA file that cannot be read)
  start_failed = 4,   // the engine could not start (an exhausted resource)
};
const boost::system::error_category& rollout_category() noexcept;
inline boost::system::error_code make_error_code(rollout_errc e) noexcept {
  return {static_cast<int>(e), rollout_category()};
}

// How a run ended.
struct rollout_outcome {
  // Every input record's result counted; empty after a start-up error.
  run_summary summary;
  // A start-up failure's text (the error_code says which kind): what could
  // not be used, named. Empty when the run started.
  std::string startup_error;
  bool started() const noexcept { return startup_error.empty(); }
};

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
  // Tokens from the embedder, in place of the job's auth source (its file,
  // variable, command or refresh endpoint, then not read):
  // - `token`: the Authorization value held in memory ("Bearer ..." or as the
  //   platform gave it); rotate_token() replaces it while the run goes on.
  //   Refused (5032) with no other in hand, the job fails.
  std::string token;
  // - `token_provider`: called on the engine's strand each time a token is
  //   wanted (the first, then after a refusal), with a reply to call once,
  //   from any thread: the token, or an empty token and why not (the job
  //   fails with that reason; before anything was sent, a start-up error
  //   rollout_errc::no_token). A reply that comes after a stop is ignored.
  //   A provider that gives the refused token again fails the job. With
  //   both set, the provider is asked and `token` is not used.
  using token_reply = std::function<void(std::string token, std::string why_not)>;
  std::function<void(token_reply reply)> token_provider;
  // A rate limit shared with other rollouts (a daemon's account-wide limit):
  // called once per request, returns when that request may go. Must be
  // thread-safe if shared between threads.
  std::function<std::chrono::steady_clock::time_point()> shared_gate;
  // The largest answer body read (a larger one is an unreadable answer,
  // not an out-of-memory); 0: the job's max_answer_bytes.
  std::size_t max_answer_bytes = 0;
  // A TLS context to share (its trust settings must be the job's); absent:
  // the rollout makes its own from the job, extra_ca_pem and
  // system_trust_store.
  std::shared_ptr<tls_client> tls;
  // Connections shared with other rollouts to the same endpoint.
  std::shared_ptr<connection_pool> pool;
  // A rollout in phases (a canary, rollout.phases): the plan made by a
  // census of the list (make_phase_plan) and a way to read the list again
  // from its start for each phase. Without them such a job fails to start.
  std::shared_ptr<const phase_plan> phases;
  std::function<std::unique_ptr<device_reader>(std::string& error)> reopen_input;
};

// A job with a canary or phases (rollout.phases) reads its device list
// once for a census (phase_plan.hpp) and once per phase: `open` gives a
// fresh reader over the list from its start each time (for a list in
// memory, a reader over its own copy), or null with its error set. Sets
// options.phases and options.reopen_input; `shard`: only this shard's
// devices. Nothing to do for a job without phases. False with `error` set
// when the census fails.
using reader_factory = std::function<std::unique_ptr<device_reader>(std::string& error)>;
bool plan_phases(const job& j, reader_factory open, rollout_options& options, std::string& error,
                 const shard_spec& shard = {});

class rollout {
 public:
  // A rollout on the caller's executor: async_run. Neither constructor
  // throws for a job's or an environment's mistake: those are start-up
  // errors of the run (rollout_outcome::startup_error; run() throws them).
  rollout(boost::asio::any_io_executor ex, const job& j, device_stream& devices, result_sink& sink,
          rollout_options options = {});
  // A rollout on an io_context of its own: run().
  rollout(const job& j, device_stream& devices, result_sink& sink, rollout_options options = {});
  ~rollout();
  rollout(const rollout&) = delete;
  rollout& operator=(const rollout&) = delete;

  // Runs the rollout on the executor; completes with (error_code,
  // rollout_outcome) once every record has a result. The error_code is set
  // (a rollout_errc) only when the run could not start: nothing was sent and
  // startup_error says what. A run that started completes without one,
  // whatever its state (completed, aborted, cancelled, failed: the
  // summary's). Per-operation cancellation: a total or partial cancellation
  // of the handler's slot is cancel(), a terminal one cancels twice
  // (requests in flight are cut). The default token is asio::deferred.
  using completion_signature = void(boost::system::error_code, rollout_outcome);
  template <typename CompletionToken = boost::asio::deferred_t>
  auto async_run(CompletionToken&& token = {}) {
    return boost::asio::async_initiate<CompletionToken, completion_signature>(
        [this](auto handler) {
          start(boost::asio::any_completion_handler<completion_signature>(std::move(handler)));
        },
        token);
  }

  // Runs the rollout on the calling thread until every record has a result.
  // Before the fleet is read it gets a token and opens one connection; an
  // endpoint that cannot be reached within the retry policy fails the job
  // (every device skipped, job_failed). Throws std::runtime_error only for
  // start-up failures (no token, a CA file that cannot be read); everything
  // after start is reported in results and in the summary's state
  // (completed, aborted, cancelled, failed) and failure().
  // Only for a rollout made without an executor.
  run_summary run();

  // Stops sending: requests in flight finish and are recorded, everything
  // not yet sent is recorded skipped (cancelled). A second call also cuts the
  // requests in flight (their devices follow unknown_outcome). Thread-safe.
  void cancel();

  // A delivery acknowledgement's outcome for an accepted device (a job with
  // acks; the caller joins them, e.g. with delivery_tracker), for the
  // rollout guard: abort_on's delivery_failed and no_ack, and a canary that
  // waits for acks. Thread-safe; nothing once the run is over.
  void on_delivery(delivery_outcome outcome, std::uint64_t index);
  // An operator's act (approve, pause, continue: dispatcher::on_operator);
  // `done` is called on the engine's strand with what came of it. Not
  // applied when the run has not started or has ended. Thread-safe.
  void act(operator_act a, std::function<void(act_result)> done);

  // A new token for a rollout given rollout_options::token: used from the
  // next request on. Thread-safe; nothing once the run is over. Returns why
  // the token cannot be used (not one line of printable ASCII, too long:
  // then ignored), or "".
  std::string rotate_token(std::string token);

  // Why the job failed (state failed), e.g. a refused token; empty otherwise.
  const std::string& failure() const noexcept;

  // How the endpoint is reached: "through the proxy host:port (HTTPS_PROXY)",
  // or empty for a direct connection. Never the proxy's user or password.
  std::string route() const;

 private:
  void start(boost::asio::any_completion_handler<completion_signature> handler);
  struct impl;
  std::shared_ptr<impl> impl_;  // shared with work posted by cancel()
};

}  // namespace fleetcast::net

template <>
struct boost::system::is_error_code_enum<fleetcast::net::rollout_errc> : std::true_type {};
