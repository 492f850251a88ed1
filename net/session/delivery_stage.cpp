// A run's delivery acknowledgements (see delivery_stage.hpp).
#include "net/session/delivery_stage.hpp"

#include "net/session/delivery_journal.hpp"
#include "net/session/subscription_hub.hpp"
#include "core/input/device_hash.hpp"
#include "net/acks/amqp_ack_receiver.hpp"
#include "net/acks/ndjson_ack_reader.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <utility>

namespace fleetcast::net {

namespace asio = boost::asio;

struct delivery_stage::impl final : result_sink, subscription_hub::member {
  impl(asio::any_io_executor e, const job& jb, result_sink& r)
      : ex(e),
        j(jb),
        results(r),
        tracker(std::uint64_t{jb.acks.timeout_s} * 1000),
        ticker(e),
        link_deadline(e) {}

  asio::any_io_executor ex;
  const job& j;
  result_sink& results;
  delivery_tracker tracker;
  delivery_journal journal;
  std::string dir;
  std::string problem;  // the journal cannot be written
  std::optional<net::ndjson_ack_reader> ndjson;
  std::optional<net::amqp_ack_receiver> amqp;
  net::amqp_receiver_config amqp_config;
  asio::steady_timer ticker;
  asio::steady_timer link_deadline;               // the 15 s for the subscription's link
  std::function<void(const std::string&)> ready;  // until the source is ready, or cannot be
  std::function<void()> done;
  std::function<void(const delivery_event&)> outcome_hook;
  std::function<void(const std::string&)> notice_hook;
  std::uint64_t overflow_told = 0;
  subscription_hub* hub = nullptr;  // shared subscription (the daemon)
  bool joined = false;
  std::uint64_t expected_on_open = 0;
  bool stopped = false;
  bool cut = false;  // stopped with devices still waiting

  ~impl() override { leave(); }
  void leave() {
    if (joined) hub->leave(*this);
    joined = false;
  }

  // subscription_hub::member: the shared subscription's messages.
  bool knows(const std::string& ticket) const override { return tracker.knows(ticket); }
  bool awaits(std::uint64_t device) const override { return tracker.awaits(device); }
  void take(const subscription_message& m, bool early) override {
    if (stopped) return;
    if (tracker.on_message(m, steady_ms(), early) && problem.empty()) {
      if (auto p = journal.record_early(m); !p.empty()) problem = "the delivery journal: " + p;
    }
    record();
    // That was the last one waited for: the wait ends now, from the timer
    // (not inside the source's own handler, which finish_wait stops).
    if (done && tracker.waiting() == 0) arm_at(steady_ms());
    if (const auto o = tracker.counts().overflow; o > overflow_told && overflow_told == 0) {
      tell(
          "acks: the table of acknowledgements that came before their answers is full; one "
          "more was counted unmatched (messages.overflow in summary.json)");
    }
    overflow_told = tracker.counts().overflow;
  }
  std::string sync() override {
    if (!problem.empty()) return problem;
    if (auto p = journal.sync(); !p.empty()) problem = "the delivery journal: " + p;
    return problem;
  }
  void tell(const std::string& text) {
    if (notice_hook) notice_hook(text);
  }

  // result_sink: the engine's results, on their way to the folder.
  void on_result(const device_result& r) override {
    results.on_result(r);
    if (r.reason == outcome_reason::accepted && !r.ticket.empty()) {
      tracker.expect(r.index, r.device.product_key, r.device.device_key, r.ticket, steady_ms());
      arm();  // its deadline, if the timer is idle
      if (joined && hub->held() > 0) hub->expected(*this, std::string(r.ticket));  // held for it
    }
    // Its request is no longer on its way: an ack for it now is no early one.
    if (r.reason != outcome_reason::invalid_record && r.reason != outcome_reason::duplicate)
      tracker.resolved(device_hash(r.device.product_key, r.device.device_key));
  }
  void flush() override {
    results.flush();
    record();
  }
  std::string_view failure() const noexcept override {
    if (auto f = results.failure(); !f.empty()) return f;
    return problem;
  }

  void record() {
    auto& events = tracker.events();
    if (events.empty() || !problem.empty()) return;
    if (outcome_hook)
      for (const auto& e : events) outcome_hook(e);
    if (auto p = journal.record(events); !p.empty()) problem = "the delivery journal: " + p;
    events.clear();
  }

  // Kept for its ticket when early: journalled; outcomes recorded before the
  // source reads (or acknowledges) the next.
  void on_message(std::string_view body) { take(read_subscription_message(body), false); }

  // The timer waits for the tracker's next deadline (a ticket's timeout_s),
  // not a poll: idle while nothing waits, armed again when a ticket comes.
  // Deadlines only move later while armed (each is its ticket's time plus
  // one timeout), so a wait is never shortened.
  bool armed = false;
  void arm() {
    if (armed || stopped) return;
    if (const std::uint64_t next = tracker.next_deadline_ms(); next != 0) arm_at(next);
  }
  // A wait already pending is replaced (its handler sees operation_aborted
  // and touches nothing: the stage may be gone by then).
  void arm_at(std::uint64_t when_ms) {
    armed = true;
    const std::uint64_t now = steady_ms();
    ticker.expires_after(std::chrono::milliseconds(when_ms > now ? when_ms - now : 0));
    ticker.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      armed = false;
      if (stopped) return;
      tracker.advance(steady_ms());
      record();
      if (!settle_wait()) arm();
    });
  }
  // The wait for acks ends once none is waiting; true when it ended.
  bool settle_wait() {
    if (!done || tracker.waiting() > 0) return false;
    finish_wait();
    return true;
  }

  void answer(const std::string& error) {
    link_deadline.cancel();
    if (auto f = std::exchange(ready, nullptr)) f(error);
  }

  void finish_wait() {
    if (ndjson) ndjson->stop();
    if (amqp) amqp->stop();
    leave();
    ticker.cancel();
    if (auto d = std::exchange(done, nullptr)) d();
  }
};

delivery_stage::delivery_stage(asio::any_io_executor ex, const job& j, result_sink& results)
    : impl_(std::make_unique<impl>(ex, j, results)) {}
delivery_stage::~delivery_stage() = default;

bool delivery_stage::open(const std::string& dir, std::string& error,
                          const std::string& extra_ca_pem, bool system_trust_store) {
  auto& s = *impl_;
  s.dir = dir;
  if (s.j.acks.kind == acks_config::source::amqp) {
    auto& c = s.amqp_config;
    c.amqp = s.j.acks.amqp;
    c.verify = s.j.tls.verify;
    c.connect_timeout_ms = s.j.timeouts.connect_ms;
    if (!net::read_amqp_credentials(c.amqp, c.access_key, c.access_secret, error)) return false;
    c.tls = net::tls_client::make(s.j.tls, error, extra_ca_pem, system_trust_store);
    if (!c.tls) {
      error = "acks.amqp: " + error;
      return false;
    }
  }
  if (s.j.acks.kind == acks_config::source::ndjson) {
    // A typo must not become timeout_s of silence: said now, nothing sent.
    std::error_code ec;
    if (!std::filesystem::exists(s.j.acks.ndjson, ec)) {
      error = fmt::format(
          "acks.ndjson: {}: no such file (create it, or start its writer, before "
          "the run)",
          s.j.acks.ndjson);
      return false;
    }
  }
  if (!s.journal.open(dir, error)) return false;
  // Acknowledgements an earlier run kept for tickets it had not seen yet.
  for (const auto& m : s.journal.early()) s.tracker.keep_early(m);
  error =
      load_tickets(dir + "/results.ndjson", s.journal, s.tracker, steady_ms(), &s.expected_on_open);
  return error.empty();
}

result_sink& delivery_stage::sink() {
  return *impl_;
}

const net::amqp_receiver_config* delivery_stage::subscription() const noexcept {
  return impl_->j.acks.kind == acks_config::source::amqp ? &impl_->amqp_config : nullptr;
}

void delivery_stage::share(subscription_hub& hub) {
  impl_->hub = &hub;
}

void delivery_stage::on_outcome(std::function<void(const delivery_event&)> f) {
  impl_->outcome_hook = std::move(f);
}

void delivery_stage::on_notice(std::function<void(const std::string&)> f) {
  impl_->notice_hook = std::move(f);
}

void delivery_stage::attach(net::rollout_options& options) {
  // Every try of a batch: its devices' requests are on their way, so an
  // acknowledgement for one of them may come before the answer.
  auto& s = *impl_;
  options.before_send = [&s, next = std::move(options.before_send)](const batch& b) {
    for (std::size_t i = 0; i < b.size(); ++i) s.tracker.sending(b.fingerprint(i));
    return next ? next(b) : std::string();
  };
}

void delivery_stage::start(std::function<void(const std::string& error)> ready) {
  auto& s = *impl_;
  s.ready = std::move(ready);
  if (s.j.acks.kind == acks_config::source::ndjson) {
    s.ndjson.emplace(
        s.ex, s.j.acks.ndjson, [&s](std::string_view body) { s.on_message(body); },
        [&s](const std::string& text) { s.tell(text); });
    std::string error;
    const bool opened = s.ndjson->start(error);
    asio::post(s.ex, [&s, error] { s.answer(error); });
    if (opened) s.arm();  // tickets of an earlier run (a resume)
    return;
  }
  // AMQP, the stage's own receiver or a shared one: ready once the link is
  // attached; not when the server refuses the login or the queue, or when
  // no link comes within 15 s.
  const auto on_link = [&s](const std::string& refusal) {
    s.answer(refusal.empty() ? std::string()
                             : "acks.amqp: the subscription refused us (" + refusal + ")");
  };
  if (s.hub) {
    s.joined = true;
    s.hub->join(s, on_link);
  } else {
    // Each message is acknowledged once its outcome is journalled and the
    // journal synced (one sync per burst of messages).
    s.amqp.emplace(s.ex, s.amqp_config, nullptr);
    s.amqp->hold_messages([&s](std::string_view body, std::uint64_t tag) {
      s.on_message(body);
      s.amqp->accept_after_sync(tag);
    });
    s.amqp->on_sync([&s] { return s.sync(); });
    s.amqp->on_state([on_link](const std::string& error, bool refused) {
      if (error.empty() || refused) on_link(error);
    });
    s.amqp->start();
  }
  s.link_deadline.expires_after(std::chrono::seconds(15));
  s.link_deadline.async_wait([&s](boost::system::error_code ec) {
    if (ec || !s.ready) return;
    const std::string last = s.joined ? s.hub->last_error() : s.amqp->last_error();
    s.answer("acks.amqp: no receiving link attached within 15 s" +
             (last.empty() ? std::string() : " (" + last + ")"));
  });
  s.arm();  // tickets of an earlier run (a resume)
}

void delivery_stage::async_wait(std::function<void()> done) {
  auto& s = *impl_;
  s.done = std::move(done);
  if (s.ndjson) s.ndjson->poll();  // what came since the last look
  s.tracker.advance(steady_ms());
  s.record();
  if (s.tracker.waiting() == 0 || s.stopped) s.finish_wait();
}

void delivery_stage::stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.cut = s.tracker.waiting() > 0;
  s.finish_wait();
  s.answer("stopped before anything was sent");
}

void delivery_stage::abandon() {
  auto& s = *impl_;
  stop();
  (void)s.journal.close();
  std::error_code ec;
  const auto path = s.dir + "/deliveries.ndjson";
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) == 0)
    std::filesystem::remove(path, ec);
}

std::string delivery_stage::source_state() const {
  const auto& s = *impl_;
  if (!s.joined && !s.amqp) return {};  // a stream
  const bool attached = s.joined ? s.hub->attached() : s.amqp->attached();
  const std::string& last = s.joined ? s.hub->last_error() : s.amqp->last_error();
  if (attached) return "subscription attached";
  return last.empty() ? "subscription connecting" : "subscription reconnecting (" + last + ")";
}

std::uint64_t delivery_stage::waiting() const noexcept {
  return impl_->tracker.waiting();
}
std::uint64_t delivery_stage::expected_now() const noexcept {
  return impl_->expected_on_open;
}
double delivery_stage::seconds_left() const noexcept {
  // The last ticket came last: its deadline ends the wait.
  const std::uint64_t last = impl_->tracker.last_deadline_ms();
  const std::uint64_t now = steady_ms();
  return last > now ? static_cast<double>(last - now) / 1000.0 : 0;
}
const delivery_counts& delivery_stage::counts() const noexcept {
  return impl_->tracker.counts();
}

std::string delivery_stage::finish(run_summary& summary) {
  auto& s = *impl_;
  if (!s.stopped) s.tracker.close();  // the wait is over: what did not come is no_ack
  s.record();
  std::string problem = s.problem;
  if (auto p = s.journal.close(); !p.empty() && problem.empty()) problem = p;
  delivery_summary d;
  if (problem.empty()) problem = merge_deliveries(s.dir + "/results.ndjson", s.journal, d);
  d.messages = s.tracker.counts();
  if (s.ndjson) d.messages.refused_lines = s.ndjson->refused();
  summary.deliveries = d;
  return problem;
}

std::string delivery_stage::conclude(run_summary& summary) {
  auto problem = finish(summary);
  if (!problem.empty()) {
    summary.state = job_state::failed;
    summary.reason = "the delivery outcomes could not be written: " + problem;
  } else if (impl_->cut && summary.state == job_state::completed) {
    summary.state = job_state::cancelled;  // sent, but the wait for acks was cut short
  }
  return problem;
}

}  // namespace fleetcast::net
