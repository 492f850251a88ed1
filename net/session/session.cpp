// The crash-safe rollout session (see session.hpp): the bring-up, the acks'
// source, the engine, the acks wait and the outputs, in that order, on one
// strand.
#include <fleetcast/net/session/session.hpp>
#include "net/session/delivery_stage.hpp"
#include "net/session/job_bringup.hpp"
#include "net/session/job_files.hpp"
#include "net/session/job_output.hpp"
#include "net/session/operator_requests.hpp"
#include "net/session/subscription_hub.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>

namespace fleetcast::net {
namespace asio = boost::asio;

namespace {

class session_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fleetcast.session"; }
  std::string message(int ev) const override {
    switch (static_cast<session_errc>(ev)) {
      case session_errc::invalid_request:
        return "the request cannot be used";
      case session_errc::devices:
        return "the device list cannot be read";
      case session_errc::folder_refused:
        return "the output folder refused the run";
      case session_errc::folder_failed:
        return "the output folder cannot be read or written";
      case session_errc::acks_source:
        return "the acknowledgements' source cannot be relied on";
      case session_errc::stopped:
        return "stopped before anything was sent";
    }
    return "unknown fleetcast.session error";
  }
};

session_errc errc_of(const bringup_result& r) {
  switch (r.step) {
    case bringup_step::folder:
      return r.outcome == open_outcome::refused ? session_errc::folder_refused
                                                : session_errc::folder_failed;
    case bringup_step::identify:
    case bringup_step::devices:
    case bringup_step::none:
      break;
  }
  return session_errc::devices;
}

}  // namespace

const boost::system::error_category& session_category() noexcept {
  static const session_category_impl category;
  return category;
}

struct session::impl {
  impl(asio::any_io_executor base_ex, const job& job_ref, session_options o)
      : base(std::move(base_ex)), ex(asio::make_strand(base)), j(job_ref), options(std::move(o)) {}

  asio::any_io_executor base;  // the caller's: the completion's by default
  asio::any_io_executor ex;    // every step on this strand
  const job& j;
  session_options options;
  job_output output;
  opened_devices devices;
  std::uint64_t newlines = 0;
  std::unique_ptr<delivery_stage> stage;
  std::optional<rollout> engine;
  bool opened = false, began = false, ended = false;
  unsigned cancels = 0;      // cancel() calls seen on the strand
  unsigned engine_told = 0;  // of those, passed on to the engine
  asio::any_completion_handler<completion_signature> handler;
  asio::any_completion_executor handler_work;
  std::optional<operator_requests> requests;

  // An act decided: recorded in the folder, told to the caller.
  void acted(const act_request& r, const act_result& result) {
    std::string error;
    if (requests && !requests->record(r, result, error) && options.on_notice)
      options.on_notice("operator.ndjson: " + error);
    if (options.on_act) options.on_act(r, result);
  }
  void apply(act_request r, std::function<void(act_result)> done = {}) {
    if (!engine || ended) {
      act_result no{false, "the rollout is not running"};
      acted(r, no);
      if (done) done(no);
      return;
    }
    engine->act(r.act, [this, r = std::move(r), done = std::move(done)](act_result result) {
      asio::dispatch(ex, [this, r, result = std::move(result), done] {
        acted(r, result);
        if (done) done(result);
      });
    });
  }
  // The requests other processes wrote into the folder (each tick).
  void take_requests() {
    if (!requests) return;
    std::vector<std::pair<act_request, act_result>> refused;
    for (auto& r : requests->take(refused)) apply(std::move(r));
    for (const auto& [r, result] : refused) acted(r, result);
  }

  boost::system::error_code open(std::string& error) {
    if (opened) return {};
    output_request request;
    request.resume = options.resume;
    request.fsync = options.fsync;
    if (options.retry_failed) {
      if (auto problem = request.plan.retry_failed(*options.retry_failed)) {
        error = *problem;
        return session_errc::invalid_request;
      }
    }
    job_parts parts{output, devices};
    if (const auto r =
            bring_up(j, request, options.shard, options.emulated, parts, options.rollout);
        !r) {
      error = r.error;
      return errc_of(r);
    }
    newlines = parts.newlines;
    if (j.acks.enabled()) {
      if (!(stage = open_delivery_stage(ex, j, output, options.rollout, error))) {
        output.abandon();
        return session_errc::acks_source;
      }
      if (options.on_notice) stage->on_notice(options.on_notice);
      if (const auto* sub = stage->subscription(); sub && options.share_subscription) {
        if (auto* hub = options.share_subscription(*sub)) stage->share(*hub);
      }
    }
    requests.emplace(j.output_dir);
    auto rollout_options = options.rollout;
    rollout_options.on_progress = [this,
                                   user = options.rollout.on_progress](const rollout_progress& p) {
      asio::dispatch(ex, [this] { take_requests(); });
      if (user) user(p);
    };
    try {
      engine.emplace(ex, j, *devices.stream, stage ? stage->sink() : output.sink(),
                     rollout_options);
    } catch (const std::exception& e) {  // an exhausted resource
      error = e.what();
      if (stage) stage->abandon();
      output.abandon();
      return rollout_errc::start_failed;
    }
    if (stage) {
      stage->on_outcome([this](const delivery_event& e) {
        if (options.on_delivery) options.on_delivery(e);
        engine->on_delivery(e.outcome, e.index);
      });
    }
    opened = true;
    return {};
  }

  // Nothing was sent: the folder as it was found, the completion.
  void refuse(boost::system::error_code ec, std::string error) {
    if (stage) stage->abandon();
    if (opened) output.abandon();
    session_outcome o;
    o.error = std::move(error);
    complete(ec, std::move(o));
  }

  void begin() {
    if (!opened) {
      std::string error;
      if (const auto ec = open(error)) return refuse(ec, std::move(error));
    }
    const bool early_stop = cancels > 0 && !options.record_early_cancel;
    if (early_stop) return refuse(session_errc::stopped, "stopped before anything was sent");
    if (!stage) return run_engine();
    stage->start([this](const std::string& problem) {
      if (problem.empty() && cancels == 0) return run_engine();
      stage->stop();
      if (cancels > 0 && options.record_early_cancel) return run_engine();  // ends at once
      if (cancels > 0) return refuse(session_errc::stopped, "stopped before anything was sent");
      refuse(session_errc::acks_source, problem);
    });
  }

  void run_engine() {
    for (; engine_told < cancels; ++engine_told) engine->cancel();  // those before it existed
    engine->async_run(
        asio::bind_executor(ex, [this](boost::system::error_code ec, rollout_outcome o) {
          if (!o.started()) {
            if (stage) stage->stop();
            return refuse(ec, std::move(o.startup_error));
          }
          if (!stage) return finish(std::move(o.summary));
          if (options.on_acks_wait) options.on_acks_wait();
          stage->async_wait([this, s = std::move(o.summary)]() mutable { finish(std::move(s)); });
        }));
  }

  void finish(run_summary summary) {
    const auto from = std::chrono::steady_clock::now();
    session_outcome o;
    o.failure = engine->failure();
    if (stage) o.deliveries_problem = stage->conclude(summary);
    o.outputs_problem = output.finish(summary);
    o.summary = std::move(summary);
    o.writing_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
    complete({}, std::move(o));
  }

  void cancel_on_strand() {
    if (ended) return;
    ++cancels;
    if (engine) {  // one not started yet keeps it for its start
      engine->cancel();
      ++engine_told;
    }
    if (stage) stage->stop();  // the acks' link wait, or their wait after the run
  }

  // The handler on its own executor, after the strand's current call returns.
  void complete(boost::system::error_code ec, session_outcome o) {
    ended = true;
    auto slot = handler.get_cancellation_slot();
    if (slot.is_connected()) slot.clear();
    asio::post(ex, [h = std::move(handler), work = std::move(handler_work), ec,
                    o = std::move(o)]() mutable {
      auto on = std::move(work);
      asio::dispatch(on, [h = std::move(h), ec, o = std::move(o)]() mutable {
        std::move(h)(ec, std::move(o));
      });
    });
  }
};

session::session(asio::any_io_executor ex, const job& j, session_options options)
    : impl_(std::make_shared<impl>(std::move(ex), j, std::move(options))) {}
session::~session() = default;

boost::system::error_code session::open(std::string& error) {
  if (impl_->began) throw std::logic_error("session::open after async_run");
  return impl_->open(error);
}

const run_summary& session::earlier() const noexcept {
  return impl_->output.earlier();
}
const std::string& session::devices_name() const noexcept {
  return impl_->devices.name;
}
bool session::acks_enabled() const noexcept {
  return impl_->stage != nullptr;
}
std::string session::acks_source_state() const {
  return impl_->stage ? impl_->stage->source_state() : std::string();
}
std::uint64_t session::acks_expected() const noexcept {
  return impl_->stage ? impl_->stage->expected_now() : 0;
}
std::uint64_t session::estimated_total() const noexcept {
  const auto& s = *impl_;
  return s.opened ? estimate_total(s.j, s.newlines, s.devices, s.options.shard) : 0;
}
std::string session::route() const {
  return impl_->engine ? impl_->engine->route() : std::string();
}
std::uint64_t session::acks_waiting() const noexcept {
  return impl_->stage ? impl_->stage->waiting() : 0;
}
const delivery_counts& session::deliveries() const noexcept {
  static const delivery_counts none;
  return impl_->stage ? impl_->stage->counts() : none;
}
double session::acks_seconds_left() const noexcept {
  return impl_->stage ? impl_->stage->seconds_left() : 0;
}

void session::act(operator_act a, std::string by, std::function<void(act_result)> done) {
  asio::dispatch(impl_->ex, [w = std::weak_ptr<impl>(impl_), a, by = std::move(by),
                             done = std::move(done)]() mutable {
    auto self = w.lock();
    if (!self) return;
    auto r = make_request(a, std::move(by));
    self->apply(std::move(r), std::move(done));
  });
}

void session::cancel() {
  asio::dispatch(impl_->ex, [w = std::weak_ptr<impl>(impl_)] {
    if (auto self = w.lock()) self->cancel_on_strand();
  });
}

void session::start(asio::any_completion_handler<completion_signature> h) {
  auto& s = *impl_;
  if (s.began) throw std::logic_error("a session runs once");
  s.began = true;
  s.handler_work = asio::prefer(asio::get_associated_executor(h, s.base),
                                asio::execution::outstanding_work.tracked);
  s.handler.swap(h);  // not move assignment: see rollout::start
  if (auto slot = s.handler.get_cancellation_slot(); slot.is_connected()) {
    // Emitted on the caller's thread: the cancel itself runs on the strand.
    slot.assign([w = std::weak_ptr<impl>(impl_)](asio::cancellation_type type) {
      const bool hard = (type & asio::cancellation_type::terminal) != asio::cancellation_type::none;
      auto self = w.lock();
      if (!self) return;
      asio::dispatch(self->ex, [w, hard] {
        auto me = w.lock();
        if (!me) return;
        me->cancel_on_strand();
        if (hard) me->cancel_on_strand();
      });
    });
  }
  asio::dispatch(s.ex, [w = std::weak_ptr<impl>(impl_)] {
    if (auto self = w.lock()) self->begin();
  });
}

}  // namespace fleetcast::net
