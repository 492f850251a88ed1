// dispatcher: every decision of a rollout, as a sans-io state machine. It
// owns the queues (ready, delayed for a backoff, waiting for a token), each
// connection's window of pipelined requests, the rate (configured, AIMD, the
// ramp, a shared gate), batch sizes and splits (5312, 5041), token
// generations, the time window, the guard (canary, abort), stop and drain.
// Time comes in as microseconds on the caller's steady clock; the machine
// never reads a clock, opens a socket or sleeps.
//
// A driver runs one loop per connection ("lane"):
//
//   for (;;) {
//     auto a = d.next(lane, now());
//     switch (a.what) {
//       case connect: d.on_connected(lane, co_await connect(), now()); break;   // connect_result
//       case write:   d.on_written(lane, co_await write(a.head, a.body), now()); break;  //
//       write_result case read:    d.on_read(lane, co_await read(), now()); break; case wait:
//       co_await sleep_until(a.until_us, a.wake_early); break; case close:   close the connection;
//       break; case done:    close it or keep it for reuse (nothing is in flight); return;
//     }
//     apply d.take_effects(): wake early waits, fetch a token, kill its child, cut sockets
//   }
//
// and reports a token (take_token_request / on_token), the time passing
// (tick), a cancel, and a lane that failed (on_lane_failed). Records come in
// from a device_stream and results go out to a result_sink, both interfaces
// the caller provides.
#pragma once

#include <fleetcast/core/dispatch/batch.hpp>
#include <fleetcast/core/dispatch/dispatch_progress.hpp>
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/output/device_result.hpp>
#include <fleetcast/core/output/run_summary.hpp>
#include "core/dispatch/accountant.hpp"
#include "core/dispatch/adaptive_rate.hpp"
#include "core/dispatch/batch_sizer.hpp"
#include "core/dispatch/chunker.hpp"
#include "core/dispatch/gateway_cap.hpp"
#include "core/dispatch/retry_policy.hpp"
#include "core/dispatch/rollout_guard.hpp"
#include "core/dispatch/token_bucket.hpp"
#include "core/protocol/attempt_classifier.hpp"
#include "core/protocol/request_encoder.hpp"
#include "core/protocol/response_decoder.hpp"

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

// What came of one try of a batch (for metrics).
enum class attempt_outcome : std::uint8_t {
  accounted,         // a 200 answer: each device has its result
  throttled,         // 429, 503, 5340: sent again, the rate slowed
  resent,            // not executed: sent again as it was
  no_answer,         // written, no answer: sent again, uncertain
  not_sent,          // the write failed
  split_too_long,    // 5312
  split_permission,  // 5041
  token_refused,     // 401, 5032
  batch_rejected,    // the answer's code fails the batch
  failed_unknown,    // no answer, unknown_outcome "fail"
  job_failed,        // the job is wrong: stopped
};
std::string_view to_string(attempt_outcome o) noexcept;

// The caller's part in decisions: resume sets, the send journal, metrics,
// an account-wide rate shared with other rollouts.
struct dispatch_hooks {
  // For --resume: records that already have a result are not sent (and not
  // reported again); records an earlier run may have sent are uncertain.
  std::function<bool(std::uint64_t index)> already_done;
  std::function<bool(std::uint64_t index)> maybe_sent;
  // Before a batch is written, with its indices; a non-empty return is why
  // it cannot be recorded: it is not sent and the job fails with that reason.
  std::function<std::string(const batch&)> before_send;
  // For each answered request, the time from its write to its answer.
  std::function<void(std::int64_t micros)> on_answer;
  // After each try of a batch: what came of it and the batch's size.
  std::function<void(attempt_outcome, std::size_t devices)> on_attempt;
  // A rate limit shared with other rollouts: called once per request with
  // the time now, returns when that request may go (same clock).
  std::function<std::int64_t(std::int64_t now_us)> shared_gate;
  // A phased rollout (phase_plan.hpp) reads its list once per phase: a
  // fresh reader from the list's start, or null with `error` set.
  std::function<std::unique_ptr<device_reader>(std::string& error)> reopen_input;
};

// A Retry-After header's delta-seconds; 0 for anything else (an HTTP date).
std::uint64_t parse_retry_after(std::string_view value) noexcept;

// What a driver read for one request.
struct read_result {
  bool answered = false;  // a whole HTTP answer was read
  int http_status = 0;
  bool keep_alive = true;
  std::string_view retry_after;  // the Retry-After header's value, if any
  std::string_view date;         // the Date header's value, if any (the server's clock)
  std::string_view body;         // the answer's body
  std::size_t readable = 0;      // bytes readable from body.data() (padding for in-place parsing)
  std::string_view detail;       // no answer: why, when known
};

// What came of a connect, as the driver reports it.
struct connect_result {
  enum class kind : std::uint8_t {
    connected,
    failed,         // resolving, connecting, the tunnel or the TLS handshake failed
    proxy_refused,  // the proxy answered CONNECT with a refusal
    stopped,        // cut by a stop while it was being made
  };
  kind what = kind::connected;
  boost::system::error_code code;  // the resolver's, socket's or TLS's error, when there was one
  std::string_view detail;         // what failed, naming the endpoint and the proxy
  bool ok() const noexcept { return what == kind::connected; }
};

// What came of a write: the socket's or TLS's error, or none.
struct write_result {
  boost::system::error_code code;
  bool ok() const noexcept { return !code; }
};

struct dispatch_action {
  enum class kind : std::uint8_t { connect, write, read, wait, close, done };
  dispatch_action() = default;
  dispatch_action(kind k, std::int64_t until = 0, bool wake = false) noexcept
      : what(k), until_us(until), wake_early(wake) {}
  kind what = kind::done;
  std::int64_t until_us = 0;    // wait: until then
  bool wake_early = false;      // wait: a change (take_effects().wake) may end it sooner
  std::string_view head, body;  // write: the request, valid until the lane's next event
};

// Side effects a driver applies after any event.
struct dispatch_effects {
  bool wake = false;        // end early waits: something changed
  bool kill_token = false;  // a token fetch under way is of no use any more
  bool cut = false;         // close every connection now (a second cancel)
};

// A token fetch the machine asks for.
struct token_request {
  bool startup = false;  // before anything is sent (a failure is a start-up failure)
};

class dispatcher {
 public:
  // `lanes`: connections; `seed`: the backoff jitter's random generator.
  // The first token comes with start().
  // `plan`: the phases and cohorts of the rollout (from a census of the
  // list; outlives the dispatcher); null for a job without canary or phases.
  // With more than one phase, hooks.reopen_input is needed.
  dispatcher(const job& j, device_stream& devices, result_sink& sink, dispatch_hooks hooks,
             unsigned lanes, std::uint64_t seed, const phase_plan* plan = nullptr);
  ~dispatcher();
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Starts the run at `now_us`, with the wall clock's time then (µs since
  // the epoch) for the time window; `token`: the token in hand, or empty
  // when the first thing to do is to fetch one (take_token_request).
  // `host_header`: the Host header's value.
  void start(std::int64_t now_us, std::int64_t wall_us, std::string token, std::string host_header);

  // A lane's next action. Call again after reporting the action's result.
  dispatch_action next(unsigned lane, std::int64_t now_us);
  // The action's results.
  void on_connected(unsigned lane, const connect_result& r, std::int64_t now_us);
  void on_written(unsigned lane, const write_result& r, std::int64_t now_us);
  void on_read(unsigned lane, const read_result& r, std::int64_t now_us);
  // The lane's driver failed (an exception): the job fails with `why`, its
  // requests in flight are recorded (job_failed, uncertain), the lane ends.
  void on_lane_failed(unsigned lane, std::string_view why, std::int64_t now_us);

  // Tokens: a fetch the machine wants (once per fetch), and its result.
  std::optional<token_request> take_token_request();
  void on_token(std::string fresh, std::int64_t now_us);
  // `cancelled`: the fetch was killed by a stop, not a failure of its own.
  void on_token_failed(std::string_view error, bool cancelled, std::int64_t now_us);
  // A token rotated at its source (a token file that changed): used from the
  // next request on when it differs.
  void on_token_rotated(std::string fresh);
  // A delivery outcome of an accepted device (a job with acks), for the
  // rollout guard: it may abort, or end the canary's wait for acks.
  void on_delivery(delivery_outcome outcome, std::uint64_t index, std::int64_t now_us);

  // An operator's act: approve (the phase waiting for an approval goes
  // on), pause (nothing more is sent; requests in flight finish, nothing is
  // skipped, the run stays up), continue (sending goes on where it paused,
  // nothing sent twice). Not applied, with why, when it does not fit.
  act_result on_operator(operator_act act, std::int64_t now_us);
  bool paused() const noexcept { return paused_; }

  // Time passes (every 250 ms or so): AIMD recovery, the window's end.
  void tick(std::int64_t now_us);
  // The caller's cancel. The first stops sending: requests in flight
  // finish, the rest is skipped (cancelled). A second one, or a `cut`, also
  // cuts the requests in flight (effects().cut; their devices follow
  // retry.unknown_outcome's rule for an unknown outcome).
  enum class cancel_kind : std::uint8_t { stop, cut };
  void cancel(cancel_kind kind = cancel_kind::stop);

  // How often the driver reports the time passing (tick) and the progress.
  static constexpr std::int64_t tick_interval_us = 250'000;

  // The caller failed (a callback of its own threw): stop, state failed
  // with `why`; requests in flight finish.
  void fail(std::string_view why);

  dispatch_effects take_effects() noexcept;

  // Every lane is done: the records not sent are recorded skipped, once, about
  // `max_records` a call (a driver yields to its loop between calls, so a
  // cancel of millions does not stall it); true once none is left. finish()
  // skips what is still left at once.
  bool drain_some(std::int64_t now_us, std::size_t max_records);
  // Every lane is done: the rest is recorded skipped, once; the summary.
  run_summary finish(std::int64_t now_us);
  dispatch_progress progress(std::int64_t now_us);

  bool stopping() const noexcept { return stopping_; }
  // Why the job failed (state failed), e.g. a refused token; empty otherwise.
  const std::string& failure() const noexcept { return failure_; }
  // A failure before anything could be sent that the caller reports as a
  // start-up error (no first token); empty otherwise.
  const std::string& startup_error() const noexcept { return startup_error_; }
  // Requests written and not yet answered, plus batches about to be.
  std::size_t in_flight() const noexcept { return in_flight_; }

 private:
  // A batch on its way: its devices, how often it was tried, when it may go.
  struct pending {
    batch devices;
    std::uint32_t tries = 0;
    std::int64_t ready_us = 0;    // not before this time (a retry's backoff)
    std::int64_t written_us = 0;  // when its last request was written (latency)
    std::uint64_t token_generation = 0;
    std::optional<std::int64_t> last_code;
    std::string last_why;
  };
  using pending_ptr = std::unique_ptr<pending>;
  struct lane_state;
  struct counting_sink final : result_sink {
    dispatcher& self;
    std::string msg_scratch, ticket_scratch;
    explicit counting_sink(dispatcher& s) : self(s) {}
    void on_result(const device_result& in) override;
    void flush() override;
  };

  static constexpr std::uint64_t drain_read_max = 4096;  // records read a read_batch, draining
  static bool later(const pending_ptr& a, const pending_ptr& b) {
    return a->ready_us > b->ready_us;
  }
  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

  bool finished() const;
  void use_token(std::string fresh);
  void fail_outputs(std::string_view why);
  void stop(job_state why, std::string failure_text = {});
  void note_unreachable(std::string why, std::int64_t now_us);
  void update_rate(std::int64_t now_us);
  bool admit_waiting();
  void release(const batch& b);
  pending_ptr read_batch(std::int64_t now_us, bool draining = false);
  // The input's end for this pass: the whole input's, the end of a phase's
  // devices (the next pass waits for its gate), or a new pass begun (a
  // drain reads the phases not yet read in one more pass).
  enum class pass_end : std::uint8_t { input_end, phase_read, next_pass };
  pass_end end_of_pass(std::int64_t now_us, bool draining);
  // This pass's devices all read and admitted: the guard is told, once;
  // true when it has opened the next phase.
  bool report_phase_read(std::int64_t now_us);
  bool begin_pass(unsigned first, unsigned last, bool invalid_too);
  std::uint32_t cohort_of(const pkdk_view& d) const {
    return plan_ ? plan_->cohort_of(d) : phase_plan::no_cohort;
  }
  pending_ptr next_batch(std::int64_t now_us);
  void stage(lane_state& l, pending_ptr p, std::int64_t now_us);
  void unstage(lane_state& l);
  dispatch_action write_action(lane_state& l, std::int64_t now_us);
  void fail(pending& p, outcome_reason reason, std::optional<std::int64_t> code,
            std::string_view msg, std::int64_t now_us);
  void fail_job(pending& p, std::string msg, std::int64_t now_us);
  void retry_later(pending_ptr p, std::uint32_t retry_after_s, std::int64_t now_us);
  void split_front(pending_ptr p, std::size_t size);
  void refresh_token(pending_ptr p);
  void settle(pending_ptr p, const attempt_result& r, const decoded_response* answer,
              std::uint32_t retry_after_s, std::string_view detail, std::int64_t now_us);
  void close_lane(lane_state& l, bool dead, std::int64_t now_us);

  const job& j_;
  device_stream& devices_;
  result_sink& sink_;
  dispatch_hooks hooks_;
  request_encoder encoder_;
  batch_sizer sizer_;
  chunker chunks_;
  accountant acct_;
  token_bucket requests_bucket_;
  token_bucket devices_bucket_;
  adaptive_rate adapt_;
  retry_policy retry_;
  std::uint64_t budget_refusals_ = 0;  // batches the retry budget gave up on
  const phase_plan* plan_;
  unsigned pass_ = 0;           // the phase whose devices the input gives now
  bool pass_read_ = false;      // this pass's input has ended
  bool pass_reported_ = false;  // and the guard was told
  bool drain_pass_ = false;     // the last pass: every phase not yet read
  rollout_guard guard_;
  gateway_cap gateways_;
  std::mt19937_64 rng_;
  counting_sink out_{*this};
  std::vector<std::unique_ptr<lane_state>> lanes_;

  std::string token_;
  std::uint64_t token_generation_ = 0;
  std::string host_header_;
  enum class token_phase : std::uint8_t { ready, wanted, fetching };
  token_phase token_phase_ = token_phase::ready;
  bool token_startup_ = false;

  // Before the first connection: lane 0 connects alone, as retry allows.
  bool started_ = false;
  std::uint32_t startup_attempts_ = 0;

  std::deque<pending_ptr> ready_;
  std::vector<pending_ptr> delayed_;  // a min-heap on ready_us
  std::deque<pending_ptr> awaiting_token_;
  bool input_done_ = false;
  bool paused_ = false;  // by an operator: no new batch goes out
  std::int64_t paused_at_us_ = 0;
  bool stopping_ = false;
  bool outputs_failed_ = false;
  bool drained_held_ = false;  // drain_some: the batches in memory are skipped
  unsigned cancels_ = 0;       // the caller's cancels: a second one cuts
  job_state state_ = job_state::completed;
  std::string failure_;
  std::string startup_error_;
  std::size_t in_flight_ = 0;
  dispatch_effects effects_;

  std::optional<std::int64_t> unreachable_since_us_;
  std::string unreachable_why_;
  std::int64_t long_wait_until_us_ = 0;  // a long Retry-After, reported while waited out
  std::string long_wait_why_;
  std::optional<std::int64_t> window_start_us_, window_end_us_;

  run_summary summary_;
  std::uint64_t records_ = 0;
  std::int64_t start_us_ = 0;
  std::int64_t results_now_us_ = 0;  // the time results are counted at
  std::int64_t rate_wait_us_ = 0;
  std::int64_t reported_at_us_ = 0, reported_wait_us_ = 0;
  unsigned lanes_running_ = 0;
};

}  // namespace fleetcast
