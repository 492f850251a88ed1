// The dispatch engine (see rollout.hpp): one thread, one io_context, one
// coroutine per connection. Every decision is core's (attempt_classifier,
// retry_policy, token_bucket, adaptive_rate, batch_sizer, accountant); this
// file moves bytes and keeps the queues.
#include "net/rollout.hpp"

#include "core/proxy.hpp"

#include "core/accountant.hpp"
#include "core/adaptive_rate.hpp"
#include "core/attempt_classifier.hpp"
#include "core/batch_sizer.hpp"
#include "core/chunker.hpp"
#include "core/gateway_cap.hpp"
#include "core/request_encoder.hpp"
#include "core/response_decoder.hpp"
#include "core/retry_policy.hpp"
#include "core/rollout_guard.hpp"
#include "core/token_bucket.hpp"
#include "net/padded_body.hpp"
#include "net/token_source.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

namespace {

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

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The proxy variables, by curl's rules: lowercase first; HTTP_PROXY is not
// read under CGI (REQUEST_METHOD set), where a request header could set it.
proxy_environment proxy_environment_now() {
  auto get = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  proxy_environment env;
  env.https_proxy = get("https_proxy");
  env.https_source = "https_proxy";
  if (env.https_proxy.empty()) {
    env.https_proxy = get("HTTPS_PROXY");
    env.https_source = "HTTPS_PROXY";
  }
  env.http_proxy = get("http_proxy");
  env.http_source = "http_proxy";
  if (env.http_proxy.empty() && get("REQUEST_METHOD").empty()) {
    env.http_proxy = get("HTTP_PROXY");
    env.http_source = "HTTP_PROXY";
  }
  env.no_proxy = get("no_proxy");
  if (env.no_proxy.empty()) env.no_proxy = get("NO_PROXY");
  return env;
}

// One keep-alive connection and what it reuses from request to request.
struct connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  SSL_SESSION* session = nullptr;  // resumed on reconnect
  bool session_saved = false;
  // Bytes read but not yet parsed: a header (at most 8 KiB) and one read of
  // at most 64 KiB; the body goes to `answer` as it arrives, so a cap here
  // bounds what a connection holds besides the answer (max_answer_bytes).
  static constexpr std::size_t read_buffer_limit = 256 * 1024;
  beast::flat_buffer buffer{read_buffer_limit};
  padded_buffer answer{response_decoder::padding};  // the last answer's body
  response_decoder decoder;
  std::string head;
  std::string body;
  asio::steady_timer timer;
  std::uint32_t connect_failures = 0;

  explicit connection(asio::io_context& ioc) : timer(ioc) {}
  ~connection() {
    if (session) SSL_SESSION_free(session);
  }
  bool open() const { return plain.has_value() || tls.has_value(); }
  void close() {
    plain.reset();
    tls.reset();
    buffer.clear();
    session_saved = false;
  }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

}  // namespace

struct rollout::impl {
  const job& j;
  device_stream& devices;
  result_sink& sink;
  rollout_options options;

  asio::io_context ioc{1};
  ssl::context ssl_ctx{ssl::context::tls_client};
  request_encoder encoder;
  batch_sizer sizer;
  chunker chunks;
  accountant acct;
  token_bucket requests_bucket;
  token_bucket devices_bucket;
  adaptive_rate adapt;
  retry_policy retry;
  rollout_guard guard;
  token_source tokens;
  std::string token;
  std::uint64_t token_generation = 0;
  std::string host_header;

  std::deque<pending_ptr> ready;
  std::vector<pending_ptr> delayed;  // a min-heap on ready_us
  std::vector<asio::steady_timer*> waiters;
  bool input_done = false;
  bool stopping = false;
  job_state state = job_state::completed;
  std::string failure;
  std::size_t in_flight = 0;
  std::atomic<bool> cancel_requested{false};
  std::atomic<int> cancels{0};  // a second cancel also cuts requests in flight
  bool outputs_failed = false;
  // A token command under way, and the batches waiting for its token.
  token_command_control token_child;
  bool token_fetching = false;
  std::deque<pending_ptr> awaiting_token;
  // Every token this run used: server text that echoes one is redacted.
  std::vector<std::string> known_tokens;
  // No connection could be made since then (cleared by a connect or an answer).
  std::optional<std::int64_t> unreachable_since_us;
  std::string unreachable_why;
  // A long Retry-After, reported while it is waited out.
  std::int64_t long_wait_until_us = 0;
  std::string long_wait_why;
  std::vector<connection*> live;  // every connection's state, for a hard cancel
  std::optional<tcp::resolver::results_type> endpoints;

  run_summary summary;
  std::uint64_t records = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::mt19937_64 rng{std::random_device{}()};
  unsigned connections_running = 0;
  std::int64_t rate_wait_us = 0;
  std::int64_t reported_at_us = 0, reported_wait_us = 0;  // at the last progress report

  // Counts each result and hands it on, with any token a server echoed
  // redacted.
  struct counting_sink final : result_sink {
    impl& self;
    std::string msg_scratch, ticket_scratch;
    explicit counting_sink(impl& s) : self(s) {}
    void on_result(const device_result& in) override {
      const device_result* r = &in;
      device_result clean;
      if (self.mentions_token(in.msg) || self.mentions_token(in.ticket)) {
        clean = in;
        msg_scratch = self.redact(in.msg);
        ticket_scratch = self.redact(in.ticket);
        clean.msg = msg_scratch;
        clean.ticket = ticket_scratch;
        r = &clean;
      }
      on_clean_result(*r);
    }
    void on_clean_result(const device_result& r) {
      self.summary.count(r);
      self.sink.on_result(r);
      if (r.reason == outcome_reason::invalid_record || r.reason == outcome_reason::duplicate)
        return;
      self.guard.on_result(r.reason, self.results_now_us);
      if (self.guard.aborted() && !self.stopping) {  // stop sending at once
        self.stop(job_state::aborted, self.guard.verdict());
      }
    }
    void flush() override {
      self.sink.flush();
      if (const auto f = self.sink.failure(); !f.empty()) self.fail_outputs(f);
    }
  } out{*this};

  bool mentions_token(std::string_view text) const {
    if (text.empty()) return false;
    for (const auto& t : known_tokens)
      if (!t.empty() && text.find(t) != std::string_view::npos) return true;
    return false;
  }
  std::string redact(std::string_view text) const {
    std::string s(text);
    for (const auto& t : known_tokens) {
      if (t.empty()) continue;
      for (auto at = s.find(t); at != std::string::npos; at = s.find(t, at + 10))
        s.replace(at, t.size(), "[redacted]");
    }
    return s;
  }
  void use_token(std::string fresh) {
    token = std::move(fresh);
    ++token_generation;
    if (std::find(known_tokens.begin(), known_tokens.end(), token) == known_tokens.end())
      known_tokens.push_back(token);
  }

  // Results cannot be kept (a full disk): stop at once, failed, whatever
  // stopped it before; what is not recorded is sent again by --resume.
  void fail_outputs(std::string_view why) {
    if (outputs_failed) return;
    outputs_failed = true;
    stop(job_state::failed);
    state = job_state::failed;
    failure = fmt::format("the results cannot be written: {} (free space, then --resume)", why);
  }

  impl(const job& jb, device_stream& d, result_sink& s, rollout_options o)
      : j(jb),
        devices(d),
        sink(s),
        options(std::move(o)),
        encoder(jb.cmd),
        sizer(jb.batch.max_devices),
        chunks(jb.batch.max_devices),
        requests_bucket(jb.rate.requests_per_second, jb.rate.burst),
        devices_bucket(jb.rate.devices_per_second,
                       std::max(jb.rate.burst, static_cast<double>(jb.batch.max_devices))),
        adapt(jb.rate.requests_per_second),
        retry(jb.retry),
        guard(jb.rollout, jb.rate.requests_per_second),
        tokens(jb.auth) {
    std::string error;
    auto choice = choose_proxy(j.endpoint, j.proxy, proxy_environment_now(), error);
    if (!error.empty()) throw std::runtime_error(error);
    proxy = std::move(choice.proxy);
    proxy_why = std::move(choice.why);
  }

  // The proxy the endpoint is reached through (absent: directly), and why.
  std::optional<proxy_url> proxy;
  std::string proxy_why;

  // The time results are counted at: read once per batch, not per device.
  std::int64_t results_now_us = 0;
  // The largest answer body read: the option when set, else the job's.
  std::size_t max_answer_bytes =
      options.max_answer_bytes ? options.max_answer_bytes : j.max_answer_bytes;

  std::int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  }
  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

  void notify() {
    for (auto* t : waiters) t->cancel();
  }

  bool finished() const {
    if (token_fetching) return false;  // ends soon once stopping: its child is killed
    return stopping ? in_flight == 0
                    : input_done && ready.empty() && delayed.empty() && awaiting_token.empty() &&
                          in_flight == 0 && chunks.empty();
  }

  // The gateway cap (core/gateway_cap.hpp): a device that waits there goes
  // into a later batch, once its gateway has room.
  gateway_cap gateways{j.rollout.max_per_gateway};

  bool admit_waiting() {
    gateway_cap::waiting_device w;
    if (!gateways.next_ready(w)) return false;
    chunks.add(w.index, w.device.view(), w.uncertain);
    guard.on_admitted(1);
    return true;
  }

  void release(const batch& b) {
    for (std::size_t i = 0; i < b.size(); ++i) gateways.release(b.device(i));
  }

  // The time window, on the engine's steady clock (set by run()).
  std::optional<std::int64_t> window_start_us, window_end_us;

  // The request rate in force: the configured one as AIMD has it, under the
  // ramp's while a ramp is on (0 = no limit).
  void update_rate() {
    const double aimd = adapt.rate();
    const double ramp = guard.ramp_rate();
    const double rate = ramp <= 0 ? aimd : aimd <= 0 ? ramp : std::min(aimd, ramp);
    if (rate != requests_bucket.rate()) requests_bucket.set_rate(rate, now_us());
  }

  // The token file changed (an outside agent rotated it): use the new token
  // from the next request on. An unreadable file keeps the current token.
  void pick_up_new_token() {
    try {
      std::string fresh = tokens.fetch();
      if (fresh != token) use_token(std::move(fresh));
    } catch (const std::exception&) {
    }
  }

  // Stops sending (the first reason wins): requests in flight finish, the
  // rest is recorded skipped by drain().
  void stop(job_state why, std::string failure_text = {}) {
    if (stopping) return;
    stopping = true;
    state = why;
    if (!failure_text.empty()) failure = redact(failure_text);
    token_child.kill();  // a token command under way is of no use any more
    notify();
  }

  // A second cancel: requests in flight are cut (their devices follow
  // unknown_outcome), not waited for.
  void cut_in_flight() {
    for (auto* c : live) {
      if (!c->open()) continue;
      boost::system::error_code ec;
      c->lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
      c->lowest().socket().close(ec);
    }
    notify();
  }

  // No connection could be made: sending pauses (the connections back off
  // and try again) until timeouts.unreachable_s have passed without one.
  void note_unreachable(std::string why) {
    const auto now = now_us();
    if (!unreachable_since_us) unreachable_since_us = now;
    unreachable_why = std::move(why);
    if (now - *unreachable_since_us >=
        static_cast<std::int64_t>(j.timeouts.unreachable_s) * 1'000'000) {
      stop(job_state::failed,
           fmt::format("no connection could be made for {} s (timeouts.unreachable_s): {}",
                       j.timeouts.unreachable_s, unreachable_why));
    }
  }

  // The window closed: stop as a cancel does (the rest is resumable).
  void close_window() { stop(job_state::cancelled, "the time window ended (rollout.not_after)"); }

  // ----------------------------------------------------------------- work

  // The next batch from the input, as far as the guard admits devices
  // (`draining`: all of them, to be recorded skipped after a stop).
  pending_ptr read_batch(bool draining = false) {
    results_now_us = now_us();
    device_record record;
    record_kind kind;
    while (!chunks.full() && (draining || guard.admit_limit() > 0)) {
      if (!draining && admit_waiting()) continue;
      if (input_done) break;                    // only waiting devices are left
      if (!draining && gateways.full()) break;  // wait for room before reading on
      if (!devices.next(record, kind)) {
        input_done = true;
        guard.on_input_end();
        if (!devices.fatal_error().empty() && failure.empty()) {
          failure = "the device list cannot be read further: " + devices.fatal_error();
          state = job_state::failed;
        } else if (records == 0 && failure.empty()) {
          // The reference page's answer to an empty list, said before sending.
          failure =
              "the device list has no records: nothing to send (5311 Please enter device list)";
          state = job_state::failed;
        }
        break;
      }
      ++records;
      if (options.already_done && options.already_done(record.index)) continue;
      if (kind != record_kind::device) {
        out.on_result(skip_result(record, kind));
        continue;
      }
      const bool uncertain = options.maybe_sent && options.maybe_sent(record.index);
      if (!draining && !gateways.admit(record.index, record.device, uncertain)) continue;
      chunks.add_hashed(record.index, record.device, record.fingerprint, uncertain);
      guard.on_admitted(1);
    }
    if (chunks.empty()) {
      out.flush();
      return nullptr;
    }
    auto p = std::make_unique<pending>();
    chunks.take(p->devices);
    return p;
  }

  pending_ptr next_batch() {
    if (cancel_requested.load(std::memory_order_relaxed)) stop(job_state::cancelled);  // at once
    if (stopping) return nullptr;
    const auto now = now_us();
    if (window_end_us && now >= *window_end_us) {
      close_window();
      return nullptr;
    }
    if (window_start_us && now < *window_start_us) return nullptr;  // not yet
    guard.tick(now);
    if (!ready.empty()) {
      auto p = std::move(ready.front());
      ready.pop_front();
      return p;
    }
    if (!delayed.empty() && delayed.front()->ready_us <= now_us()) {
      std::pop_heap(delayed.begin(), delayed.end(), later);
      auto p = std::move(delayed.back());
      delayed.pop_back();
      return p;
    }
    if (!input_done || gateways.waiting() > 0) return read_batch();
    return nullptr;
  }

  static bool later(const pending_ptr& a, const pending_ptr& b) {
    return a->ready_us > b->ready_us;
  }

  // ----------------------------------------------------------------- outcomes

  static std::string_view outcome_label(const attempt_result& r, const attempt_verdict& v) {
    if (r.reached == attempt_result::stage::not_written) return "not_sent";
    if (r.reached == attempt_result::stage::no_answer) return "no_answer";
    if (v.slow_down) return "throttled";
    switch (v.action) {
      case attempt_action::account:
        return "accounted";
      case attempt_action::resend:
        return "resent";
      case attempt_action::retry:
        return "no_answer";
      case attempt_action::fail_uncertain:
        return "failed_unknown";
      case attempt_action::refresh_token:
        return "token_refused";
      case attempt_action::split_too_long:
        return "split_too_long";
      case attempt_action::split_permission:
        return "split_permission";
      case attempt_action::fail_batch:
        return "batch_rejected";
      case attempt_action::fail_job:
        return "job_failed";
    }
    return "other";
  }

  void fail(pending& p, outcome_reason reason, std::optional<std::int64_t> code,
            std::string_view msg) {
    results_now_us = now_us();
    accountant::account_all(p.devices, reason, code, msg, out);
    out.flush();
    release(p.devices);
  }

  void fail_job(pending& p, std::string msg) {
    stop(job_state::failed, std::move(msg));
    fail(p, outcome_reason::job_failed, p.last_code, failure);
  }

  void retry_later(pending_ptr p, std::uint32_t retry_after_s) {
    if (!retry.allow_retry(p->tries)) {
      const auto msg = fmt::format("{} (gave up after {} tr{}{})", p->last_why, p->tries,
                                   p->tries == 1 ? "y" : "ies",
                                   retry.budget_exhausted() ? "; retry budget exhausted" : "");
      fail(*p, outcome_reason::transport_failed, p->last_code, msg);
      return;
    }
    const auto delay = retry.delay_ms(p->tries + 1, unit(), retry_after_s * 1000);
    p->ready_us = now_us() + static_cast<std::int64_t>(delay) * 1000;
    delayed.push_back(std::move(p));
    std::push_heap(delayed.begin(), delayed.end(), later);
  }

  // Re-slices a batch into pieces of at most `size` devices, first in line.
  void split_front(pending_ptr p, std::size_t size) {
    const std::size_t n = p->devices.size();
    size = std::clamp<std::size_t>(size, 1, (n + 1) / 2);
    std::vector<pending_ptr> pieces;
    for (std::size_t first = 0; first < n; first += size) {
      auto piece = std::make_unique<pending>();
      piece->devices = p->devices.slice(first, first + size);
      piece->tries = p->tries;
      pieces.push_back(std::move(piece));
    }
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) ready.push_front(std::move(*it));
  }

  void refresh_token(pending_ptr p) {
    if (p->token_generation == token_generation && tokens.is_command()) {
      // The command runs as a child while the other connections go on.
      awaiting_token.push_back(std::move(p));
      if (!token_fetching) asio::co_spawn(ioc, fetch_token_again(), asio::detached);
      return;
    }
    if (p->token_generation == token_generation) {  // the token in use was refused
      std::string fresh;
      try {
        fresh = tokens.fetch();
      } catch (const std::exception& e) {
        return fail_job(
            *p, fmt::format("the token was refused (5032) and a fresh one cannot be had: {}",
                            e.what()));
      }
      if (fresh == token) {
        return fail_job(*p,
                        "the token was refused (5032) and no fresh token is available: "
                        "rotate the token at its source (auth) and resume");
      }
      use_token(std::move(fresh));
    }
    ready.push_front(std::move(p));
  }

  // After a 5032 with a token command: a fresh token, then the waiting
  // batches go again; no fresh token fails the job (they are skipped).
  asio::awaitable<void> fetch_token_again() {
    token_fetching = true;
    std::string error;
    std::string fresh = co_await async_token_command(tokens.config(), token_child, error);
    token_fetching = false;
    if (stopping) {
      // cancelled or failed meanwhile: the waiting batches are drained
    } else if (!error.empty()) {
      stop(job_state::failed,
           fmt::format("the token was refused (5032) and a fresh one cannot be had: {}", error));
    } else if (fresh == token) {
      stop(job_state::failed,
           "the token was refused (5032) and auth.token_command printed the same token: rotate "
           "the token at its source and resume");
    } else {
      use_token(std::move(fresh));
      while (!awaiting_token.empty()) {
        ready.push_front(std::move(awaiting_token.back()));
        awaiting_token.pop_back();
      }
    }
    notify();
  }

  // What one try came to: account it, retry it, split it, or stop.
  void settle(pending_ptr p, const attempt_result& r, const decoded_response* answer,
              std::uint32_t retry_after_s, std::string_view detail = {}) {
    results_now_us = now_us();
    if (r.reached != attempt_result::stage::not_written) p->devices.note_attempt();
    const auto v = classify_attempt(r, p->devices.size(), j.retry.unknown_outcome);
    if (options.on_attempt) options.on_attempt(outcome_label(r, v), p->devices.size());
    if (v.slow_down) {
      const double elapsed = std::max(1e-3, static_cast<double>(now_us()) / 1e6);
      adapt.on_throttle(now_us(), static_cast<double>(summary.requests) / elapsed);
      update_rate();
    }
    if (r.reached == attempt_result::stage::answered) {
      p->last_code = r.decoded ? std::optional<std::int64_t>(r.code) : std::nullopt;
      p->last_why = r.decoded && r.code != 200
                        ? fmt::format("{}: {}", v.why, answer ? answer->msg : "")
                        : fmt::format("{} (HTTP {})", v.why, r.http_status);
    } else {
      p->last_why = detail.empty() ? std::string(v.why) : std::string(detail);
    }
    switch (v.action) {
      case attempt_action::account: {
        acct.account_answer(p->devices, *answer, out);
        out.flush();
        release(p->devices);
        update_rate();  // a ramp steps up with successes
        sizer.on_accepted(p->devices.size());
        chunks.set_max_devices(sizer.current());
        break;
      }
      case attempt_action::resend:
        retry_later(std::move(p), retry_after_s);
        break;
      case attempt_action::retry:
        p->devices.mark_uncertain();
        retry_later(std::move(p), retry_after_s);
        break;
      case attempt_action::fail_uncertain:
        p->devices.mark_uncertain();
        fail(*p, outcome_reason::transport_failed, p->last_code, p->last_why);
        break;
      case attempt_action::refresh_token:
        refresh_token(std::move(p));
        break;
      case attempt_action::split_too_long:
        // Nothing was executed. Pieces of the size the search tries next: one
        // refusal teaches every piece.
        sizer.on_too_long(p->devices.size());
        chunks.set_max_devices(sizer.current());
        split_front(std::move(p), sizer.current());
        break;
      case attempt_action::split_permission: {
        const std::size_t half = (p->devices.size() + 1) / 2;  // halves isolate the refused
        split_front(std::move(p), half);
        break;
      }
      case attempt_action::fail_batch:
        fail(*p, outcome_reason::batch_rejected, p->last_code,
             answer && !answer->msg.empty() ? answer->msg : std::string_view(p->last_why));
        break;
      case attempt_action::fail_job:
        fail_job(*p, p->last_why);
        break;
    }
    notify();
  }

  // ----------------------------------------------------------------- I/O

  // Connects (through the proxy's tunnel, when there is one) and shakes
  // hands; "" when connected, else why not, naming the endpoint and proxy.
  asio::awaitable<std::string> connect(connection& c) {
    c.close();
    const auto& ep = j.endpoint;
    const auto why = [&](std::string_view what) {
      c.close();
      endpoints.reset();  // resolve again next time
      return proxy ? fmt::format("cannot connect to {} through the proxy {}: {}", ep.url,
                                 proxy->display(), what)
                   : fmt::format("cannot connect to {}: {}", ep.url, what);
    };
    const auto limit = std::chrono::milliseconds(j.timeouts.connect_ms);
    if (!endpoints) {
      tcp::resolver resolver(ioc);
      auto [ec, results] = co_await resolver.async_resolve(
          proxy ? proxy->host : ep.host, std::to_string(proxy ? proxy->port : ep.port), no_throw);
      if (ec) co_return why(ec.message());
      endpoints = results;
    }
    if (ep.tls) {
      c.tls.emplace(ioc, ssl_ctx);
      SSL* ssl = c.tls->native_handle();
      if (!is_ip_address(ep.host)) SSL_set_tlsext_host_name(ssl, ep.host.c_str());
      if (j.tls.verify) c.tls->set_verify_callback(ssl::host_name_verification(ep.host));
      if (c.session) SSL_set_session(ssl, c.session);
    } else {
      c.plain.emplace(ioc);
    }
    auto& low = c.lowest();
    low.expires_after(limit);
    auto [ec, connected] = co_await low.async_connect(*endpoints, no_throw);
    if (!ec) low.socket().set_option(tcp::no_delay(true), ec);
    if (ec) co_return why(ec == beast::error::timeout ? "connect timed out" : ec.message());
    if (proxy) {
      // The tunnel: CONNECT, the proxy's answer; then TLS to the endpoint
      // through it, with the endpoint's own host check.
      const auto request = connect_request(*proxy, ep.host, ep.port);
      low.expires_after(limit);
      std::tie(ec, std::ignore) = co_await asio::async_write(low, asio::buffer(request), no_throw);
      http::response_parser<http::empty_body> answer;
      answer.skip(true);  // an answer to CONNECT has no body
      if (!ec)
        std::tie(ec, std::ignore) =
            co_await http::async_read_header(low, c.buffer, answer, no_throw);
      if (ec) {
        co_return why(fmt::format("no answer to CONNECT: {}",
                                  ec == beast::error::timeout ? "timed out" : ec.message()));
      }
      const auto target = fmt::format("{}:{}", ep.host, ep.port);
      if (auto refused =
              tunnel_refusal(*proxy, target, answer.get().result_int(), answer.get().reason());
          !refused.empty()) {
        c.close();
        co_return refused;
      }
      if (c.buffer.size() != 0) co_return why("the proxy sent bytes after its answer to CONNECT");
    }
    if (c.tls) {
      low.expires_after(limit);
      std::tie(ec) = co_await c.tls->async_handshake(ssl::stream_base::client, no_throw);
      if (ec) co_return why(ec == beast::error::timeout ? "TLS handshake timed out" : ec.message());
    }
    co_return std::string();
  }

  template <typename Stream>
  asio::awaitable<boost::system::error_code> write_request(Stream& s, connection& c) {
    c.head.clear();
    fmt::format_to(std::back_inserter(c.head),
                   "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: "
                   "application/json\r\nContent-Length: {}\r\n\r\n",
                   j.endpoint.target(), host_header, token, c.body.size());
    // buffers_cat, not std::array<const_buffer, 2> (see emulator.cpp).
    const auto buffers = beast::buffers_cat(asio::buffer(c.head), asio::buffer(c.body));
    beast::get_lowest_layer(s).expires_after(std::chrono::milliseconds(j.timeouts.request_ms));
    auto [ec, n] = co_await asio::async_write(s, buffers, no_throw);
    co_return ec;
  }

  struct answer_info {
    attempt_result result;
    bool server_closes = false;
    std::uint32_t retry_after_s = 0;
    std::uint64_t retry_after_asked_s = 0;  // before the cap
    std::string detail;                     // why there is no answer, when known
  };

  template <typename Stream>
  asio::awaitable<answer_info> read_answer(Stream& s, connection& c) {
    answer_info a;
    a.result.reached = attempt_result::stage::no_answer;
    http::response_parser<padded_body> parser;
    parser.get().body().storage = &c.answer;
    parser.body_limit(max_answer_bytes);
    beast::get_lowest_layer(s).expires_after(std::chrono::milliseconds(j.timeouts.request_ms));
    auto [ec, n] = co_await http::async_read(s, c.buffer, parser, no_throw);
    if (ec) {
      if (ec == http::error::body_limit) {
        a.detail = fmt::format("the answer is larger than the limit of {} bytes (max_answer_bytes)",
                               max_answer_bytes);
      } else if (ec == http::error::header_limit) {
        a.detail = "the answer's header is larger than the limit of 8 KiB";
      } else if (ec == http::error::buffer_overflow) {
        a.detail = fmt::format("the answer's framing holds more than {} KiB unparsed",
                               connection::read_buffer_limit / 1024);
      } else if (ec == http::error::partial_message) {
        a.detail = "the answer was cut short (the connection closed in the middle of it)";
      } else if (ec != http::error::end_of_stream &&
                 ec.category() == make_error_code(http::error::bad_version).category()) {
        a.detail = fmt::format("the answer is not valid HTTP/1.1: {}", ec.message());
      }
      co_return a;
    }
    auto& res = parser.get();
    a.result.reached = attempt_result::stage::answered;
    a.result.http_status = static_cast<int>(res.result_int());
    a.server_closes = !res.keep_alive();
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      std::uint64_t v = 0;
      for (char ch : it->value()) {
        if (ch < '0' || ch > '9') {
          v = 0;
          break;
        }
        v = std::min<std::uint64_t>(v * 10 + static_cast<unsigned>(ch - '0'), 1ULL << 40);
      }
      a.retry_after_asked_s = v;
      a.retry_after_s =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(v, j.retry.max_retry_after_s));
    }
    if (a.result.http_status == 200) {
      a.result.decoded = !c.decoder.decode(c.answer.view(), c.answer.readable());
      a.result.code = a.result.decoded ? c.decoder.response().code : 0;
    }
    if (c.tls && !c.session_saved) {  // after the first answer: TLS 1.3 tickets have arrived
      if (SSL_SESSION* s2 = SSL_get1_session(c.tls->native_handle())) {
        if (c.session) SSL_SESSION_free(c.session);
        c.session = s2;
      }
      c.session_saved = true;
    }
    co_return a;
  }

  asio::awaitable<void> wait_until(connection& c, std::int64_t when_us, bool wake_on_notify) {
    c.timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, when_us - now_us())));
    if (wake_on_notify) waiters.push_back(&c.timer);
    co_await c.timer.async_wait(no_throw);
    if (wake_on_notify) std::erase(waiters, &c.timer);
  }

  // One connection: fill a window of up to pipeline_depth written requests,
  // then read their answers in order.
  asio::awaitable<void> connection_loop(std::unique_ptr<connection> owned) {
    connection& c = *owned;
    live.push_back(&c);
    struct unlist {
      std::vector<connection*>& live;
      connection* c;
      ~unlist() { std::erase(live, c); }
    } unlisted{live, &c};
    std::deque<pending_ptr> window;
    const std::size_t depth = std::max<std::uint32_t>(1, j.pipeline_depth);
    for (;;) {
      // Fill the window.
      while (window.size() < depth) {
        pending_ptr p = next_batch();
        if (!p) break;
        ++in_flight;
        const auto now = now_us();
        auto go = std::max(requests_bucket.reserve(1, now),
                           devices_bucket.reserve(static_cast<double>(p->devices.size()), now));
        if (options.shared_gate) {
          go = std::max(go, std::chrono::duration_cast<std::chrono::microseconds>(
                                options.shared_gate() - start)
                                .count());
        }
        if (go > now) {
          rate_wait_us += go - now;
          co_await wait_until(c, go, false);
        }
        if (stopping) {  // cancelled or failed while waiting: it will be skipped
          ready.push_front(std::move(p));
          --in_flight;
          break;
        }
        if (!c.open()) {
          const auto why = co_await connect(c);
          if (!why.empty()) {
            // Not a try: nothing was sent. The batch waits for a connection;
            // the job fails only when none can be made for unreachable_s.
            --in_flight;
            ready.push_front(std::move(p));
            ++c.connect_failures;
            note_unreachable(why);
            co_await wait_until(
                c,
                now_us() + 1000 * static_cast<std::int64_t>(
                                      retry.delay_ms(std::min(c.connect_failures + 1, 8u), unit())),
                true);
            break;
          }
          c.connect_failures = 0;
          unreachable_since_us.reset();
        }
        c.body.clear();
        encoder.encode(p->devices, c.body);
        if (options.before_send) {
          if (auto problem = options.before_send(p->devices); !problem.empty()) {
            --in_flight;  // not sent: what cannot be journaled must not go
            ready.push_front(std::move(p));
            fail_outputs(problem);
            break;
          }
        }
        p->token_generation = token_generation;
        ++p->tries;
        ++summary.requests;
        retry.count_request();
        boost::system::error_code ec;  // (no co_await in a conditional: see below)
        if (c.tls) {
          ec = co_await write_request(*c.tls, c);
        } else {
          ec = co_await write_request(*c.plain, c);
        }
        if (ec) {
          --in_flight;
          c.close();
          settle(std::move(p), {attempt_result::stage::not_written}, nullptr, 0);
          for (auto& w : window) {  // written before, now unanswerable
            --in_flight;
            settle(std::move(w), {attempt_result::stage::no_answer}, nullptr, 0);
          }
          window.clear();
          break;
        }
        p->written_us = now_us();
        window.push_back(std::move(p));
      }

      if (window.empty()) {
        if (finished()) co_return;
        std::int64_t wake = delayed.empty() ? now_us() + 1'000'000 : delayed.front()->ready_us;
        wake = std::min(wake, guard.next_change_us());  // the end of a canary wait
        if (window_start_us && *window_start_us > now_us()) wake = std::min(wake, *window_start_us);
        co_await wait_until(c, wake, true);
        continue;
      }

      // Read the oldest request's answer.
      // Not `c.tls ? co_await ... : co_await ...`: g++ 12 destroys the
      // result of a co_await in a conditional expression twice (a double
      // free once answer_info held a std::string).
      answer_info a;
      if (c.tls) {
        a = co_await read_answer(*c.tls, c);
      } else {
        a = co_await read_answer(*c.plain, c);
      }
      pending_ptr p = std::move(window.front());
      window.pop_front();
      --in_flight;
      const bool dead = a.result.reached != attempt_result::stage::answered;
      if (!dead && options.on_answer) options.on_answer(now_us() - p->written_us);
      if (!dead) unreachable_since_us.reset();
      if (a.retry_after_asked_s >= 10) {
        long_wait_until_us = now_us() + static_cast<std::int64_t>(a.retry_after_s) * 1'000'000;
        long_wait_why =
            a.retry_after_asked_s > a.retry_after_s
                ? fmt::format(
                      "the server asked to wait {} s (Retry-After); waiting {} s "
                      "(retry.max_retry_after_s)",
                      a.retry_after_asked_s, a.retry_after_s)
                : fmt::format("the server asked to wait {} s (Retry-After)", a.retry_after_s);
      }
      settle(std::move(p), a.result, a.result.decoded ? &c.decoder.response() : nullptr,
             a.retry_after_s, a.detail);
      if (dead || a.server_closes) {
        c.close();
        for (auto& w : window) {
          --in_flight;
          // Behind a Connection: close answer nothing was processed; behind a
          // dead connection the outcome is unknown.
          const attempt_result r{dead ? attempt_result::stage::no_answer
                                      : attempt_result::stage::not_written};
          if (!dead) --w->tries;  // not a try: the server never read it
          settle(std::move(w), r, nullptr, 0);
        }
        window.clear();
      }
    }
  }

  asio::steady_timer progress_timer{ioc};

  asio::awaitable<void> progress_loop() {
    auto& t = progress_timer;
    while (connections_running > 0) {
      if (cancel_requested) stop(job_state::cancelled);
      if (adapt.tick(now_us())) update_rate();
      if (tokens.file_changed()) pick_up_new_token();
      if (window_end_us && now_us() >= *window_end_us) close_window();
      report();
      t.expires_after(std::chrono::milliseconds(250));
      co_await t.async_wait(no_throw);
    }
  }

  void report() {
    if (!options.on_progress) return;
    rollout_progress p;
    p.records = records;
    p.done = summary.records;
    p.succeeded = summary.count_of(device_status::succeeded);
    p.failed = summary.count_of(device_status::failed);
    p.skipped = summary.count_of(device_status::skipped);
    p.requests = summary.requests;
    p.retries = summary.retries;
    p.batch_size = sizer.current();
    p.elapsed_s = static_cast<double>(now_us()) / 1e6;
    p.rate_wait_s = static_cast<double>(rate_wait_us) / 1e6;
    p.input_complete = input_done;
    const auto now = now_us();
    if (unreachable_since_us && !stopping) {
      p.waiting_for =
          fmt::format("no connection for {:.0f} s: {}",
                      static_cast<double>(now - *unreachable_since_us) / 1e6, unreachable_why);
    } else if (token_fetching) {
      p.waiting_for = "a fresh token (auth.token_command)";
    } else if (now < long_wait_until_us) {
      p.waiting_for = fmt::format("{} ({:.0f} s left)", long_wait_why,
                                  static_cast<double>(long_wait_until_us - now) / 1e6);
    } else if (window_start_us && now < *window_start_us && !stopping) {
      p.waiting_for = fmt::format("the time window (opens in {:.0f} s)",
                                  std::ceil(static_cast<double>(*window_start_us - now) / 1e6));
    } else if (auto held = guard.holding_for(now); !held.empty() && !stopping) {
      p.waiting_for = std::move(held);
    } else if (gateways.waiting() > 0 && ready.empty() && delayed.empty() && !stopping) {
      p.waiting_for = fmt::format("the gateway cap ({} devices wait for room behind their gateway)",
                                  gateways.waiting());
    } else if (connections_running > 0 && now > reported_at_us && !stopping) {
      // Connections that spent most of the last interval waiting for a slot.
      const double idle = static_cast<double>(rate_wait_us - reported_wait_us) /
                          (static_cast<double>(now - reported_at_us) * connections_running);
      if (idle > 0.5) p.waiting_for = "the rate limit";
    }
    reported_at_us = now;
    reported_wait_us = rate_wait_us;
    options.on_progress(p);
  }

  // After the connections end: everything not sent is skipped, once.
  void drain() {
    results_now_us = now_us();
    const auto reason = state == job_state::failed    ? outcome_reason::job_failed
                        : state == job_state::aborted ? outcome_reason::aborted
                                                      : outcome_reason::cancelled;
    const std::string msg = !failure.empty() ? failure : std::string(to_string(reason));
    auto skip = [&](pending& p) {
      accountant::account_all(p.devices, reason, p.last_code, msg, out);
    };
    for (auto& p : ready) skip(*p);
    for (auto& p : delayed) skip(*p);
    for (auto& p : awaiting_token) skip(*p);
    ready.clear();
    delayed.clear();
    awaiting_token.clear();
    gateways.drain([&](const gateway_cap::waiting_device& w) {  // behind a full gateway
      pending p;
      p.devices.add(w.index, w.device.view(), 0, w.uncertain);
      skip(p);
    });
    for (;;) {
      if (!chunks.empty()) {
        pending p;
        chunks.take(p.devices);
        skip(p);
      }
      if (input_done) break;
      if (auto p = read_batch(true)) skip(*p);  // the next batch's worth of records
    }
    out.flush();
  }

  // Before the fleet is read: a token (a token command runs as a child) and
  // one connection (TCP, TLS, host check), tried as the retry policy allows.
  // The connection is the first connection loop's. When either fails the
  // job fails with the cause and no device is sent.
  asio::awaitable<void> start_up(unsigned n) {
    if (tokens.is_command()) {
      std::string error;
      std::string first = co_await async_token_command(tokens.config(), token_child, error);
      if (!error.empty()) {
        if (token_child.killed || cancel_requested) {
          stop(job_state::cancelled);
        } else {
          startup_error = error;
        }
        {
          end_connections(n);
          co_return;
        }
      }
      use_token(std::move(first));
    }
    auto c = std::make_unique<connection>(ioc);
    for (std::uint32_t attempt = 1;; ++attempt) {
      if (cancel_requested) stop(job_state::cancelled);
      if (stopping) {
        end_connections(n);
        co_return;
      }
      const auto why = co_await connect(*c);
      if (why.empty()) break;
      if (attempt >= std::max<std::uint32_t>(1, j.retry.max_attempts)) {
        stop(job_state::failed, fmt::format("{} ({} tr{}; nothing was sent)", why, attempt,
                                            attempt == 1 ? "y" : "ies"));
        {
          end_connections(n);
          co_return;
        }
      }
      unreachable_since_us = unreachable_since_us.value_or(now_us());
      unreachable_why = why;
      co_await wait_until(*c,
                          now_us() + 1000 * static_cast<std::int64_t>(
                                                retry.delay_ms(attempt + 1, 0.5 + 0.5 * unit())),
                          true);
    }
    unreachable_since_us.reset();
    asio::co_spawn(ioc, connection_loop(std::move(c)), connection_done());
    for (unsigned i = 1; i < n; ++i)
      asio::co_spawn(ioc, connection_loop(std::make_unique<connection>(ioc)), connection_done());
  }

  std::string startup_error;
  std::exception_ptr crashed;

  std::function<void(std::exception_ptr)> connection_done() {
    return [this](std::exception_ptr e) {
      if (e && !crashed) crashed = e;
      end_connections(1);
    };
  }
  void end_connections(unsigned k) {
    connections_running -= k;
    if (connections_running == 0) {
      notify();
      progress_timer.cancel();  // the run is over: do not wait out the progress tick
    }
  }

  void setup_tls() {
    if (!j.endpoint.tls) return;
    SSL_CTX_set_min_proto_version(ssl_ctx.native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ssl_ctx.native_handle(), SSL_SESS_CACHE_CLIENT);
    boost::system::error_code ec;
    if (j.tls.ca_file) {
      ssl_ctx.load_verify_file(*j.tls.ca_file, ec);
      if (ec)
        throw std::runtime_error(fmt::format("tls.ca_file: {}: {}", *j.tls.ca_file, ec.message()));
    } else if (options.system_trust_store) {
      ssl_ctx.set_default_verify_paths(ec);
      if (ec) throw std::runtime_error("the system trust store cannot be loaded: " + ec.message());
    }
    if (!options.extra_ca_pem.empty()) {
      ssl_ctx.add_certificate_authority(asio::buffer(options.extra_ca_pem), ec);
      if (ec) throw std::runtime_error("extra CA certificate: " + ec.message());
    }
    ssl_ctx.set_verify_mode(j.tls.verify ? ssl::verify_peer : ssl::verify_none);
  }
};

rollout::rollout(const job& j, device_stream& devices, result_sink& sink, rollout_options options)
    : impl_(std::make_unique<impl>(j, devices, sink, std::move(options))) {}

rollout::~rollout() = default;

void rollout::cancel() {
  auto& s = *impl_;
  s.cancel_requested = true;
  if (s.cancels.fetch_add(1) >= 1) {  // the second: cut what is in flight
    asio::post(s.ioc, [&s] {
      s.stop(job_state::cancelled);
      s.cut_in_flight();
    });
  }
}

const std::string& rollout::failure() const noexcept {
  return impl_->failure;
}

std::string rollout::route() const {
  const auto& s = *impl_;
  return s.proxy ? fmt::format("through the proxy {} ({})", s.proxy->display(), s.proxy_why)
                 : std::string();
}

run_summary rollout::run() {
  auto& s = *impl_;
  if (!s.tokens.is_command()) s.use_token(s.tokens.fetch());
  s.setup_tls();
  const auto& ep = s.j.endpoint;
  const bool v6 = ep.host.find(':') != std::string::npos;
  const bool default_port = ep.port == (ep.tls ? 443 : 80);
  s.host_header = fmt::format("{}{}{}", v6 ? "[" : "", ep.host, v6 ? "]" : "");
  if (!default_port) s.host_header += fmt::format(":{}", ep.port);
  s.summary.name = s.j.name;
  s.start = std::chrono::steady_clock::now();
  // The window's wall-clock bounds on the steady clock of this run.
  const auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  if (s.j.rollout.not_before) s.window_start_us = *s.j.rollout.not_before * 1'000'000 - wall_us;
  if (s.j.rollout.not_after) s.window_end_us = *s.j.rollout.not_after * 1'000'000 - wall_us;
  s.update_rate();

  const unsigned n = std::max<std::uint32_t>(1, s.j.connections);
  s.connections_running = n;
  asio::co_spawn(s.ioc, s.start_up(n), [&s, n](std::exception_ptr e) {
    if (e && !s.crashed) {
      s.crashed = e;
      s.end_connections(n);
    }
  });
  asio::co_spawn(s.ioc, s.progress_loop(), asio::detached);
  s.ioc.run();
  if (s.crashed) std::rethrow_exception(s.crashed);
  if (!s.startup_error.empty()) throw std::runtime_error(s.startup_error);
  s.drain();
  s.summary.state = s.state;
  s.summary.elapsed_s = static_cast<double>(s.now_us()) / 1e6;
  // The size settled on: the largest the server accepted (the search's next
  // probe may never have been sent).
  s.summary.batch_size =
      s.sizer.largest_accepted() ? s.sizer.largest_accepted() : s.sizer.current();
  s.report();
  return s.summary;
}

}  // namespace fleetcast::net
