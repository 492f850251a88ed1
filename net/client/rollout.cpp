// The rollout driver (see rollout.hpp): one thread, one io_context, one
// coroutine per connection. Every decision is the dispatcher's
// (core/dispatch): this file connects, writes, reads and waits, runs the
// token helper when asked, and reports what happened.
#include <fleetcast/net/client/rollout.hpp>

#include <fleetcast/core/output/secret_registry.hpp>
#include "core/auth/token_supply.hpp"
#include "core/dispatch/dispatcher.hpp"
#include "core/job/proxy.hpp"
#include "core/protocol/token_refresh.hpp"
#include "net/client/link.hpp"
#include "net/client/link_io.hpp"
#include "net/client/padded_body.hpp"
#include "net/client/tls_context.hpp"
#include "net/client/token_source.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);
// Records reported skipped a turn of the loop at the run's end (a few ms).
constexpr std::size_t drain_slice = 4096;

namespace {

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

// A start-up failure of begin(): what kind, and the text naming it.
struct startup_failure : std::runtime_error {
  rollout_errc code;
  startup_failure(rollout_errc c, const std::string& why) : std::runtime_error(why), code(c) {}
};

class rollout_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fleetcast.rollout"; }
  std::string message(int ev) const override {
    switch (static_cast<rollout_errc>(ev)) {
      case rollout_errc::proxy_setting:
        return "the proxy setting cannot be used";
      case rollout_errc::no_token:
        return "no token could be had";
      case rollout_errc::tls_setup:
        return "the TLS settings cannot be used";
      case rollout_errc::start_failed:
        return "the engine could not start";
    }
    return "unknown rollout error";
  }
};

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an unknown exception";
  }
}

}  // namespace

const boost::system::error_category& rollout_category() noexcept {
  static const rollout_category_impl category;
  return category;
}

connection_pool::connection_pool(std::chrono::milliseconds idle_timeout)
    : impl_(std::make_unique<impl>(impl{idle_timeout, {}, 0, 0})) {}
connection_pool::~connection_pool() = default;
std::uint64_t connection_pool::opened() const noexcept {
  return impl_->opened;
}
std::uint64_t connection_pool::reused() const noexcept {
  return impl_->reused;
}
std::size_t connection_pool::idle() const noexcept {
  return impl_->idle.size();
}
void connection_pool::close_idle() noexcept {
  impl_->idle.clear();
}

struct rollout::impl {
  const job& j;
  rollout_options options;
  std::optional<asio::io_context> own;  // run(): an io_context of its own
  asio::any_io_executor base;           // the caller's (or own's): the completion's by default
  // Every handler of the run on one strand: the engine is safe on a
  // multi-threaded executor without a strand of the caller's.
  asio::any_io_executor ex;
  boost::asio::any_completion_handler<rollout::completion_signature> handler;
  asio::any_completion_executor
      handler_work;  // the handler's executor, its work kept until completion
  bool began = false, ended = false;
  bool engine_started = false;  // begin() started the dispatcher (on the strand)
  unsigned early_cancels = 0;   // cancels that came before it (on the strand)
  token_source tokens;
  token_command_control token_child;
  token_supply supply;  // where tokens come from, when to renew (core)
  dispatcher d;
  std::string host;                   // the Host header
  link_base* refresh_link = nullptr;  // the renewal's connection while it runs
  bool refresh_cut = false;           // a stop came: the renewal under way ends now
  std::vector<link_base*> live;       // every connection, for waking and cutting
  std::vector<asio::steady_timer*> waiters;
  asio::steady_timer progress_timer{ex};
  // A cancel came (from any thread); the dispatcher counts them on the strand.
  std::atomic<bool> cancel_requested{false};
  unsigned lanes_running = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  // The proxy the endpoint is reached through (absent: directly), and why.
  std::optional<proxy_url> proxy;
  std::string proxy_why;
  link_io io;  // connecting, writing, reading (the lanes' and the renewal's)

  static token_supply::source source_of(const rollout_options& o, const token_source& t) {
    using source = token_supply::source;
    if (o.token_provider) return source::provider;
    if (!o.token.empty()) return source::memory;
    if (t.is_command()) return source::command;
    return t.refreshes() ? source::refresh : source::read;
  }

  static dispatch_hooks hooks_of(const rollout_options& o, impl* self) {
    dispatch_hooks h;
    h.already_done = o.already_done;
    h.maybe_sent = o.maybe_sent;
    h.before_send = o.before_send;
    h.on_answer = o.on_answer;
    h.reopen_input = o.reopen_input;
    if (o.on_attempt) {
      h.on_attempt = [f = o.on_attempt](attempt_outcome what, std::size_t n) {
        f(to_string(what), n);
      };
    }
    if (o.shared_gate) {
      h.shared_gate = [self, f = o.shared_gate](std::int64_t) {
        return std::chrono::duration_cast<std::chrono::microseconds>(f() - self->start).count();
      };
    }
    return h;
  }

  impl(std::optional<asio::any_io_executor> given, const job& jb, device_stream& devices,
       result_sink& sink, rollout_options o)
      : j(jb),
        options(std::move(o)),
        base(given ? *given : own.emplace(1).get_executor()),
        ex(asio::make_strand(base)),
        tokens(jb.auth),
        supply(source_of(options, tokens)),
        d(jb, devices, sink, hooks_of(options, this), std::max<std::uint32_t>(1, jb.connections),
          std::random_device{}(), options.phases.get()),
        io(jb, ex, proxy,
           options.max_answer_bytes ? options.max_answer_bytes : jb.max_answer_bytes) {
    // A proxy setting that cannot be used is a start-up error of the run
    // (begin()), not an exception of the constructor.
    auto choice = choose_proxy(j.endpoint, j.proxy, proxy_environment_now(), proxy_error);
    proxy = std::move(choice.proxy);
    proxy_why = std::move(choice.why);
  }
  std::string proxy_error;

  std::int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  }

  // ------------------------------------------------------------ effects

  // What the dispatcher asks for besides a lane's action.
  void apply_effects() {
    for (;;) {
      const auto e = d.take_effects();
      if (e.kill_token || e.cut) carry(supply.stopped(e.kill_token, e.cut));
      if (e.cut)
        for (auto* c : live) c->cut();
      // Stopping: a connection still being made carries nothing yet, so a
      // proxy or a handshake that hangs must not hold the stop.
      if (d.stopping())
        for (auto* c : live)
          if (c->connecting) c->cut();
      if (e.wake)
        for (auto* t : waiters) t->cancel();
      if (d.take_token_request()) {
        carry(supply.requested(wall_s()));
        continue;
      }
      if (!e.wake && !e.cut && !e.kill_token) return;
    }
  }

  // A step of core's token_supply, carried out.
  void carry(const token_supply::step& s) {
    using to_start = token_supply::step::start;
    if (s.kill_command) token_child.kill();
    if (s.cut_refresh) cut_refresh();
    if (s.fail) d.on_token_failed(s.fail->text, s.fail->cancelled, now_us());
    if (s.reread_if_changed && tokens.file_changed()) {
      try {
        d.on_token_rotated(tokens.fetch());
      } catch (const std::exception&) {  // an unreadable file keeps the current token
      }
    }
    switch (s.what) {
      case to_start::nothing:
        break;
      case to_start::ask_provider:
        ask_provider();
        break;
      case to_start::use_memory:  // the one in memory (rotate_token may have changed it)
        d.on_token(options.token, now_us());
        break;
      case to_start::run_command:
        asio::co_spawn(ex, run_token_command(), asio::detached);
        break;
      case to_start::refresh:
        refresh_cut = false;
        asio::co_spawn(ex, run_refresh(), asio::detached);
        break;
      case to_start::read_now:
        try {
          d.on_token(tokens.fetch(), now_us());
        } catch (const std::exception& x) {
          d.on_token_failed(x.what(), false, now_us());
        }
        break;
    }
  }

  // The token command runs as a child while the connections go on.
  asio::awaitable<void> run_token_command() {
    std::string error;
    std::string fresh = co_await async_token_command(tokens.config(), token_child, error);
    if (auto f = supply.command_ended(error, token_child.killed || cancel_requested))
      d.on_token_failed(f->text, f->cancelled, now_us());
    else
      d.on_token(std::move(fresh), now_us());
    apply_effects();
  }

  // The embedder's provider: asked on the strand, answered from anywhere.
  void ask_provider() {
    const auto generation = supply.generation();
    auto reply = [w = weak_self, generation](std::string token, std::string why_not) {
      auto self = w.lock();
      if (!self) return;
      asio::dispatch(self->ex, [w, generation, token = std::move(token),
                                why_not = std::move(why_not)]() mutable {
        auto me = w.lock();
        if (!me || me->ended) return;
        if (why_not.empty() && token.empty()) why_not = "it gave an empty token";
        if (why_not.empty()) why_not = check_token(token);
        const auto v = me->supply.provider_replied(generation, why_not);
        if (v.accepted)
          me->d.on_token(std::move(token), me->now_us());
        else if (v.fail)
          me->d.on_token_failed(v.fail->text, false, me->now_us());
        me->apply_effects();
      });
    };
    try {
      options.token_provider(std::move(reply));
    } catch (const std::exception& x) {
      const auto f = supply.provider_threw(x.what());
      d.on_token_failed(f.text, f.cancelled, now_us());
    }
  }
  std::weak_ptr<impl> weak_self;  // set by start(): replies and posts outlive nothing

  // ------------------------------------------------------------ renewal

  static std::int64_t wall_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  void cut_refresh() {
    refresh_cut = true;
    if (refresh_link) refresh_link->cut();
  }

  asio::awaitable<void> run_refresh() {
    std::string error;
    refresh_answer a;
    std::optional<std::int64_t> server_now;
    try {
      const auto target = refresh_target(j.endpoint.path_prefix, tokens.refresh_token());
      // Not a conditional expression of two co_awaits: g++ 12 miscompiles that.
      if (j.endpoint.tls)
        a = co_await put<tls_stream>(target, error, server_now);
      else
        a = co_await put<beast::tcp_stream>(target, error, server_now);
    } catch (const std::exception& x) {
      error = x.what();
    }
    if (error.empty() && !a.error.empty()) error = "the refresh endpoint answered " + a.error;
    if (error.empty()) error = tokens.store(a.access_token, a.refresh_token);  // checked first
    std::int64_t expires = 0;
    if (error.empty()) {
      // The server's clock: its Date, else the fresh token's iat.
      if (!server_now) server_now = jwt_issued_s(a.access_token);
      expires = a.access_expires_s ? a.access_expires_s : jwt_expiry_s(a.access_token).value_or(0);
    }
    using give = token_supply::refresh_verdict::give;
    const auto v = supply.refresh_ended(wall_s(), error, refresh_cut, expires, server_now);
    if (v.token == give::fresh) d.on_token(a.access_token, now_us());
    if (v.token == give::rotated) d.on_token_rotated(a.access_token);
    if (v.fail) d.on_token_failed(v.fail->text, v.fail->cancelled, now_us());
    apply_effects();
  }

  // PUT on a connection of its own (through the proxy, as the requests).
  template <typename Stream>
  asio::awaitable<refresh_answer> put(const std::string& target, std::string& error,
                                      std::optional<std::int64_t>& server_now) {
    link<Stream> c(ex);
    refresh_link = &c;
    struct unlist {
      link_base*& at;
      ~unlist() { at = nullptr; }
    } unlisted{refresh_link};
    if (auto connected = co_await io.connect(c); !connected.ok() || refresh_cut) {
      error = refresh_cut ? "stopped" : connected.text;
      co_return refresh_answer{};
    }
    const auto head = fmt::format(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Length: "
        "0\r\nConnection: close\r\n\r\n",
        target, host);
    read_result r;
    if (!co_await io.write(c, head, {}) && !refresh_cut) co_await io.read(c, r);
    if (r.answered) server_now = parse_http_date(r.date);
    c.close();
    if (refresh_cut) {
      error = "stopped";
      co_return refresh_answer{};
    }
    if (!r.answered) {
      error = "no answer from the refresh endpoint" +
              (r.detail.empty() ? std::string() : ": " + std::string(r.detail));
      co_return refresh_answer{};
    }
    co_return read_refresh_answer(r.http_status, r.body);
  }

  // ------------------------------------------------------------ waits

  asio::awaitable<void> wait_until(link_base& c, std::int64_t when_us, bool wake_early) {
    c.timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, when_us - now_us())));
    if (wake_early) waiters.push_back(&c.timer);
    co_await c.timer.async_wait(no_throw);
    if (wake_early) std::erase(waiters, &c.timer);
  }

  // One connection: the dispatcher's actions, carried out until it is done.
  template <typename Stream>
  asio::awaitable<void> lane(unsigned i) {
    std::unique_ptr<link_base> held;
    if (options.pool) held = options.pool->get().take(is_tls<Stream>);
    if (!held) held = std::make_unique<link<Stream>>(ex);
    auto& c = static_cast<link<Stream>&>(*held);
    live.push_back(&c);
    struct unlist {
      std::vector<link_base*>& live;
      link_base* c;
      ~unlist() { std::erase(live, c); }
    } unlisted{live, &c};
    using kind = dispatch_action::kind;
    for (;;) {
      const auto a = d.next(i, now_us());
      apply_effects();
      switch (a.what) {
        case kind::connect: {
          link_io::connect_outcome connected;
          if (c.from_pool) {
            c.from_pool = false;  // open already: the handshake was another rollout's
          } else {
            c.connecting = true;
            connected = co_await io.connect(c);
            c.connecting = false;
            if (connected.ok() && d.stopping())
              connected = {connect_result::kind::stopped, {}, "stopped while connecting"};
            if (connected.ok() && options.pool) ++options.pool->get().opened;
          }
          d.on_connected(i, connected.result(), now_us());
          break;
        }
        case kind::write: {
          d.on_written(i, write_result{co_await io.write(c, a.head, a.body)}, now_us());
          break;
        }
        case kind::read: {
          read_result r;
          co_await io.read(c, r);
          d.on_read(i, r, now_us());
          break;
        }
        case kind::wait:
          co_await wait_until(c, a.until_us, a.wake_early);
          break;
        case kind::close:
          c.close();
          c.from_pool = false;
          break;
        case kind::done:
          // Nothing in flight: a pool keeps a clean open connection (or
          // one this rollout took and never needed).
          if (options.pool && (c.from_pool || c.reusable())) {
            c.from_pool = false;
            std::erase(live, &c);
            options.pool->get().give(std::move(held));
          }
          co_return;
      }
      apply_effects();
    }
  }

  void lane_ended() {
    if (--lanes_running == 0) {
      cut_refresh();  // nothing will use it: the run ends now
      for (auto* t : waiters) t->cancel();
      progress_timer.cancel();  // the run is over: do not wait out the progress tick
    }
  }

  void spawn_lane(unsigned i) {
    auto done = [this, i](std::exception_ptr e) {
      if (e) {  // a bug or an exhausted resource: the job fails, nothing is lost
        d.on_lane_failed(i, what_of(e), now_us());
        apply_effects();
      }
      lane_ended();
    };
    if (j.endpoint.tls) {
      asio::co_spawn(ex, lane<tls_stream>(i), done);
    } else {
      asio::co_spawn(ex, lane<beast::tcp_stream>(i), done);
    }
  }

  // ------------------------------------------------------------ progress

  asio::awaitable<void> progress_loop() {
    while (lanes_running > 0) {
      d.tick(now_us());
      carry(supply.tick(wall_s()));  // a renewal before expiry, a rotated file
      apply_effects();
      report();
      progress_timer.expires_after(std::chrono::microseconds(dispatcher::tick_interval_us));
      co_await progress_timer.async_wait(no_throw);
    }
    // The records not sent (a cancel, an abort, the window's end), reported
    // in slices with a turn of the loop between them: the caller's other
    // work (and the daemon's other jobs) go on meanwhile.
    if (!d.startup_error().empty()) co_return;  // nothing is reported: nothing was sent
    while (!d.drain_some(now_us(), drain_slice)) co_await asio::post(ex, asio::use_awaitable);
  }

  void report() {
    if (options.on_progress) options.on_progress(d.progress(now_us()));
  }

  // Before anything is sent: the first token (a token command: the
  // dispatcher's first action), TLS, the lanes and the progress loop.
  // Throws for a start-up failure.
  void begin() {
    if (!proxy_error.empty()) throw startup_failure(rollout_errc::proxy_setting, proxy_error);
    std::string first_token;  // none: the dispatcher's first action asks for it
    if (supply.first() == token_supply::step::start::use_memory) {
      if (auto bad = check_token(options.token); !bad.empty())
        throw startup_failure(rollout_errc::no_token, "the token given in memory: " + bad);
      first_token = options.token;
    } else if (supply.first() == token_supply::step::start::read_now) {
      try {
        first_token = tokens.fetch();
      } catch (const std::exception& x) {
        throw startup_failure(rollout_errc::no_token, x.what());
      }
    }
    if (j.endpoint.tls) {
      std::string error;
      io.tls = options.tls ? options.tls
                           : tls_client::make(j.tls, error, options.extra_ca_pem,
                                              options.system_trust_store);
      if (!io.tls) throw startup_failure(rollout_errc::tls_setup, error);
    }
    const auto& ep = j.endpoint;
    const bool v6 = ep.host.find(':') != std::string::npos;
    const bool default_port = ep.port == (ep.tls ? 443 : 80);
    host = fmt::format("{}{}{}", v6 ? "[" : "", ep.host, v6 ? "]" : "");
    if (!default_port) host += fmt::format(":{}", ep.port);
    supply.began(wall_s(), jwt_expiry_s(first_token).value_or(0));
    start = std::chrono::steady_clock::now();
    const auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    d.start(0, wall_us, std::move(first_token), host);
    engine_started = true;
    for (; early_cancels > 0; --early_cancels) d.cancel();  // before it started: nothing is sent
    apply_effects();  // the first token, when a command gives it
    const unsigned n = std::max<std::uint32_t>(1, j.connections);
    lanes_running = n;
    for (unsigned i = 0; i < n; ++i) spawn_lane(i);
    asio::co_spawn(ex, progress_loop(), [this](std::exception_ptr e) {
      if (e) d.fail("the progress report failed: " + what_of(e));
      rollout_outcome o;
      boost::system::error_code ec;
      if (!d.startup_error().empty()) {
        o.startup_error = d.startup_error();
        ec = rollout_errc::no_token;  // the only start-up failure the machine has
      } else {
        o.summary = d.finish(now_us());
        // Why it failed or was aborted; else what the engine said (exclusions).
        if (!d.failure().empty()) o.summary.reason = d.failure();
        report();
      }
      complete(ec, std::move(o));
    });
  }

  // The run's end: the handler is called on its own executor (after the
  // engine's handler returns: never inside the strand's current call).
  void complete(boost::system::error_code ec, rollout_outcome o) {
    ended = true;
    auto slot = handler.get_cancellation_slot();
    if (slot.is_connected()) slot.clear();
    auto h = std::move(handler);
    // Posted first: a handler that destroys the rollout runs after the
    // engine's own handler returned; then on the handler's executor.
    asio::post(ex,
               [h = std::move(h), work = std::move(handler_work), ec, o = std::move(o)]() mutable {
                 auto on = std::move(work);
                 asio::dispatch(on, [h = std::move(h), ec, o = std::move(o)]() mutable {
                   std::move(h)(ec, std::move(o));
                 });
               });
  }
};

rollout::rollout(asio::any_io_executor ex, const job& j, device_stream& devices, result_sink& sink,
                 rollout_options options)
    : impl_(std::make_shared<impl>(std::move(ex), j, devices, sink, std::move(options))) {}

rollout::rollout(const job& j, device_stream& devices, result_sink& sink, rollout_options options)
    : impl_(std::make_shared<impl>(std::nullopt, j, devices, sink, std::move(options))) {}

rollout::~rollout() = default;

void rollout::cancel() {
  auto& s = *impl_;
  s.cancel_requested = true;
  // On the strand, at once; nothing once the run is over. The dispatcher
  // decides what a second cancel does.
  asio::post(s.ex, [w = std::weak_ptr<impl>(impl_)] {
    auto self = w.lock();
    if (!self || self->ended) return;
    if (!self->engine_started) {
      ++self->early_cancels;
      return;
    }
    self->d.cancel();
    self->apply_effects();
  });
}

std::string rollout::rotate_token(std::string token) {
  if (auto bad = check_token(token); !bad.empty()) return bad;
  secret_registry::process().add(token);  // redacted from now on, wherever it is echoed
  asio::dispatch(impl_->ex, [w = std::weak_ptr<impl>(impl_), token = std::move(token)]() mutable {
    auto self = w.lock();
    if (!self || self->ended) return;
    self->options.token = token;
    if (self->engine_started) self->d.on_token_rotated(std::move(token));
  });
  return {};
}

void rollout::act(operator_act a, std::function<void(act_result)> done) {
  asio::dispatch(impl_->ex, [w = std::weak_ptr<impl>(impl_), a, done = std::move(done)] {
    auto self = w.lock();
    if (!self || self->ended || !self->engine_started) {
      done({false, self && self->ended ? "the rollout has ended" : "the rollout has not started"});
      return;
    }
    auto r = self->d.on_operator(a, self->now_us());
    self->apply_effects();
    done(std::move(r));
  });
}

void rollout::on_delivery(delivery_outcome outcome, std::uint64_t index) {
  asio::dispatch(impl_->ex, [w = std::weak_ptr<impl>(impl_), outcome, index] {
    auto self = w.lock();
    if (!self || !self->began || self->ended) return;
    self->d.on_delivery(outcome, index, self->now_us());
    self->apply_effects();
  });
}

const std::string& rollout::failure() const noexcept {
  return impl_->d.failure();
}

std::string rollout::route() const {
  const auto& s = *impl_;
  return s.proxy ? fmt::format("through the proxy {} ({})", s.proxy->display(), s.proxy_why)
                 : std::string();
}

void rollout::start(asio::any_completion_handler<completion_signature> h) {
  auto& s = *impl_;
  if (s.began) throw std::logic_error("a rollout runs once");
  s.began = true;
  s.weak_self = impl_;
  // The handler's executor has work until the completion: its run() does
  // not return while the rollout runs elsewhere.
  s.handler_work = asio::prefer(asio::get_associated_executor(h, s.base),
                                asio::execution::outstanding_work.tracked);
  // Not `s.handler = std::move(h)`: Boost 1.81's move assignment of
  // any_completion_handler copies from an lvalue into its own template
  // constructor and recurses until the stack ends.
  s.handler.swap(h);
  if (auto slot = s.handler.get_cancellation_slot(); slot.is_connected()) {
    // Emitted on the caller's thread: the cancel itself runs on the strand.
    slot.assign([w = std::weak_ptr<impl>(impl_)](asio::cancellation_type type) {
      const bool hard = (type & asio::cancellation_type::terminal) != asio::cancellation_type::none;
      auto self = w.lock();
      if (!self) return;
      self->cancel_requested = true;
      asio::dispatch(self->ex, [w, hard] {
        auto me = w.lock();
        if (!me || me->ended) return;
        if (!me->engine_started) {
          me->early_cancels += hard ? 2 : 1;
          return;
        }
        me->d.cancel(hard ? dispatcher::cancel_kind::cut : dispatcher::cancel_kind::stop);
        me->apply_effects();
      });
    });
  }
  // On the strand: the lanes, the timers and their state are its alone.
  asio::dispatch(s.ex, [w = std::weak_ptr<impl>(impl_)] {
    auto self = w.lock();
    if (!self) return;
    try {
      self->begin();
    } catch (const startup_failure& e) {
      self->complete(e.code, rollout_outcome{{}, e.what()});
    } catch (const std::exception& e) {  // an exhausted resource
      self->complete(rollout_errc::start_failed, rollout_outcome{{}, e.what()});
    }
  });
}

run_summary rollout::run() {
  auto& s = *impl_;
  if (!s.own) throw std::logic_error("run() is for a rollout without an executor: use async_run");
  rollout_outcome out;
  async_run([&out](boost::system::error_code, rollout_outcome o) { out = std::move(o); });
  s.own->run();
  if (!out.started()) throw std::runtime_error(out.startup_error);
  return out.summary;
}

bool plan_phases(const job& j, reader_factory open, rollout_options& options, std::string& error,
                 const shard_spec& shard) {
  if (j.rollout.steps().empty()) return true;
  auto reader = open(error);
  if (!reader) return false;
  device_stream census(std::move(reader));
  census.set_shard(shard);
  auto plan = std::make_shared<phase_plan>(j.rollout);
  if (!take_census(*plan, census, error)) return false;
  options.phases = std::move(plan);
  options.reopen_input = std::move(open);
  return true;
}

}  // namespace fleetcast::net
