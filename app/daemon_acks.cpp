// The daemon's delivery acknowledgements (see daemon_service.hpp): a job
// with `acks` runs as `fleetcast run` runs it (its stage between the
// engine and its folder, nothing sent before the subscription's link is
// attached, the wait after the last answer, the outcomes written at the
// end), except that jobs naming the same subscription with the same
// credentials share one connection to it (subscription_hub). Metrics: the
// outcomes as they are decided, the ack latency, the message counts, each
// subscription's state.
#include "app/daemon_service.hpp"
#include "app/library_parts.hpp"

#include "net/acks/amqp_login.hpp"

#include <fmt/format.h>

#include <cmath>

namespace fleetcast::app::daemon_detail {

bool daemon_service::open_acks(daemon_job& dj, net::rollout_options& options, std::string& error) {
  dj.acks = open_delivery_stage(ioc_->get_executor(), dj.spec, dj.output, options, error);
  if (!dj.acks) return false;
  if (const auto* sub = dj.acks->subscription()) {
    const auto& a = sub->amqp;
    auto label = fmt::format("{}:{}{}", a.host, a.port, a.source);  // host:port/source
    const auto key = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", label, a.hostname, a.idle_timeout_ms,
                                 dj.spec.tls.verify, dj.spec.tls.ca_file.value_or(""),
                                 net::credential_digest(sub->access_key, sub->access_secret));
    auto& hub = hubs_[key];
    if (!hub) {
      // The same subscription with other credentials or settings: its own
      // connection, told apart by a number (never by a credential).
      std::size_t same = 0;
      for (const auto& [k, h] : hubs_)
        if (h && h->label().starts_with(label)) ++same;
      if (same > 0) label += fmt::format("#{}", same + 1);
      hub = std::make_unique<subscription_hub>(ioc_->get_executor(), *sub, std::move(label));
    }
    dj.acks->share(*hub);
  }
  daemon_job* self = &dj;
  dj.acks->on_notice([this, self](const std::string& text) {
    log_.write("warn", self->name, "acks_source", details().str("message", text));
  });
  dj.acks->on_outcome([this, self](const delivery_event& e) {
    if (self->rollout) self->rollout->on_delivery(e.outcome);  // the guard judges delivery too
    std::lock_guard lock(metrics_mutex_);
    ++deliveries_[static_cast<std::size_t>(e.outcome)];
    if (e.outcome != delivery_outcome::no_ack)
      ack_latency_.observe(static_cast<double>(e.latency_ms) / 1000.0);
  });
  return true;
}

// Sends once the job's acks can be relied on, then waits for them.
void daemon_service::run_job(const std::shared_ptr<daemon_job>& dj_ptr) {
  daemon_job* self = dj_ptr.get();
  const auto send = [this, self] {
    self->rollout->async_run([this, self](boost::system::error_code, net::rollout_outcome o) {
      if (!self->acks || !o.started()) {
        if (self->acks) self->acks->stop();
        return end_job(*self, std::move(o));
      }
      {
        std::lock_guard lock(jobs_mutex_);
        self->acks_now.waiting_phase = true;
        self->last_result = steady::now();
      }
      log_.write("info", self->name, "job_waiting_for_acks",
                 details()
                     .num("waiting", self->acks->waiting())
                     .num("at_most_s", std::ceil(self->acks->seconds_left())));
      auto kept = std::make_shared<net::rollout_outcome>(std::move(o));
      self->acks->async_wait([this, self, kept] { end_job(*self, std::move(*kept)); });
    });
  };
  if (!self->acks) return send();
  self->acks->start([this, self, send](const std::string& problem) {
    // A job cancelled meanwhile still runs: its rollout ends at once, cancelled.
    if (problem.empty() || self->cancel_by_user || self->cancel_by_drain) return send();
    self->acks->abandon();
    net::rollout_outcome o;
    o.startup_error = problem + " (nothing was sent)";
    end_job(*self, std::move(o));
  });
}

// The rollout and the wait for acks are over: the outputs, then the job
// is ready for settle().
void daemon_service::end_job(daemon_job& dj, net::rollout_outcome o) {
  std::string problem;
  if (o.started()) {
    try {
      if (dj.acks) problem = dj.acks->conclude(o.summary);
      if (auto p = dj.output.finish(o.summary); problem.empty()) problem = p;
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  if (!problem.empty())
    log_.write("error", dj.name, "result_json", details().str("error", problem));
  {
    std::lock_guard lock(jobs_mutex_);
    if (!o.started()) dj.startup_error = o.startup_error;
    dj.summary = std::move(o.summary);
    dj.phase = job_phase::finished;
  }
  dj.done = true;
  wake();
}

void daemon_service::cancel_job(daemon_job& dj) {
  if (dj.rollout) dj.rollout->cancel();
  if (dj.acks) dj.acks->stop();  // what still waits is left to a resume
}

// On the loop's thread: what the admin port shows of the acks.
void daemon_service::sample_acks() {
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_) {
      if (!j->acks || j->phase != job_phase::running) continue;
      j->acks_now.waiting = j->acks->waiting();
      j->acks_now.counts = j->acks->counts();
      j->acks_now.source = j->acks->source_state();
    }
  }
  std::vector<subscription_figures> now;
  for (const auto& [key, hub] : hubs_)
    now.push_back({hub->label(), hub->attached(), hub->connections(), hub->held(), hub->totals()});
  std::lock_guard lock(metrics_mutex_);
  subscriptions_ = std::move(now);
}

// Under jobs_mutex_ and metrics_mutex_.
void daemon_service::append_ack_metrics(std::string& out) {
  namespace pm = prometheus;
  pm::append_header(out, "fleetcast_deliveries_total", "counter",
                    "Delivery outcomes decided since the daemon started (REQACK succ, fail, or "
                    "none within acks.timeout_s).");
  constexpr std::array<delivery_outcome, 3> outcomes{
      delivery_outcome::delivered, delivery_outcome::delivery_failed, delivery_outcome::no_ack};
  for (std::size_t i = 0; i < 3; ++i)
    pm::append_sample(out, "fleetcast_deliveries_total", "outcome", to_string(outcomes[i]),
                      static_cast<double>(deliveries_[i]));
  ack_latency_.append(out, "fleetcast_ack_latency_seconds",
                      "From a device's accepted answer to its REQACK (delivered or failed).");
  delivery_counts messages = ack_messages_finished_;
  for (const auto& j : jobs_)
    if (j->acks_now.enabled) messages += j->acks_now.counts;
  pm::append_header(out, "fleetcast_ack_messages_total", "counter",
                    "Acknowledgements the jobs' trackers counted, by kind.");
  const std::pair<const char*, std::uint64_t> kinds[] = {{"early", messages.early},
                                                         {"duplicate", messages.duplicates},
                                                         {"contradictory", messages.contradictory},
                                                         {"mismatched", messages.mismatched},
                                                         {"unmatched", messages.unmatched},
                                                         {"late", messages.late},
                                                         {"other", messages.other_messages},
                                                         {"malformed", messages.malformed}};
  for (const auto& [kind, n] : kinds)
    pm::append_sample(out, "fleetcast_ack_messages_total", "kind", kind, static_cast<double>(n));
  pm::append_header(out, "fleetcast_job_acks_waiting", "gauge",
                    "Devices of a running job accepted and waiting for their REQACK.");
  for (const auto& j : jobs_)
    if (j->acks_now.enabled && j->phase == job_phase::running)
      pm::append_sample(out, "fleetcast_job_acks_waiting", "job", j->name,
                        static_cast<double>(j->acks_now.waiting));
  pm::append_header(out, "fleetcast_subscription_attached", "gauge",
                    "1 while the subscription's receiving link is attached.");
  for (const auto& s : subscriptions_)
    pm::append_sample(out, "fleetcast_subscription_attached", "subscription", s.label,
                      s.attached ? 1 : 0);
  pm::append_header(out, "fleetcast_subscription_connections_total", "counter",
                    "Connections made to the subscription (one shared by its jobs at a time).");
  for (const auto& s : subscriptions_)
    pm::append_sample(out, "fleetcast_subscription_connections_total", "subscription", s.label,
                      static_cast<double>(s.connections));
  pm::append_header(out, "fleetcast_subscription_held_messages", "gauge",
                    "Messages held unacknowledged for a ticket no job has yet.");
  for (const auto& s : subscriptions_)
    pm::append_sample(out, "fleetcast_subscription_held_messages", "subscription", s.label,
                      static_cast<double>(s.held));
  pm::append_header(out, "fleetcast_subscription_messages_total", "counter",
                    "The shared subscription's messages by what came of them.");
  for (const auto& s : subscriptions_) {
    const std::pair<const char*, std::uint64_t> ends[] = {
        {"routed", s.totals.routed},        {"held_then_routed", s.totals.early},
        {"unmatched", s.totals.unmatched},  {"returned", s.totals.returned},
        {"other", s.totals.other_messages}, {"malformed", s.totals.malformed}};
    for (const auto& [what, n] : ends)
      pm::append_sample(out, "fleetcast_subscription_messages_total",
                        {{"subscription", s.label}, {"kind", what}}, static_cast<double>(n));
  }
}

}  // namespace fleetcast::app::daemon_detail
