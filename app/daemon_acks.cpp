// The daemon's jobs run as `fleetcast run` runs one, through a session
// (see daemon_service.hpp); for a job with `acks`: nothing sent before the
// subscription's link is attached, the wait after the last answer, the
// outcomes written at the end; jobs naming the same subscription with the
// same credentials share one connection to it (subscription_hub). Metrics: the
// outcomes as they are decided, the ack latency, the message counts, each
// subscription's state.
#include "app/daemon_service.hpp"
#include "app/library_parts.hpp"

#include "net/acks/amqp_login.hpp"

#include <fmt/format.h>

#include <cmath>

namespace fleetcast::app::daemon_detail {

// The subscription a job names, shared: one connection per subscription
// and credentials (the same subscription with other credentials or
// settings: its own, told apart by a number, never by a credential).
subscription_hub* daemon_service::shared_subscription(const job& spec,
                                                      const net::amqp_receiver_config& sub) {
  const auto& a = sub.amqp;
  auto label = fmt::format("{}:{}{}", a.host, a.port, a.source);  // host:port/source
  const auto key = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", label, a.hostname, a.idle_timeout_ms,
                               spec.tls.verify, spec.tls.ca_file.value_or(""),
                               net::credential_digest(sub.access_key, sub.access_secret));
  auto& hub = hubs_[key];
  if (!hub) {
    std::size_t same = 0;
    for (const auto& [k, h] : hubs_)
      if (h && h->label().starts_with(label)) ++same;
    if (same > 0) label += fmt::format("#{}", same + 1);
    hub = std::make_unique<subscription_hub>(ioc_->get_executor(), sub, std::move(label));
  }
  return hub.get();
}

// A job's acks: its subscription shared, its source's events logged, the
// outcomes counted, the wait after the last answer shown.
void daemon_service::acks_options(daemon_job& dj, net::session_options& options) {
  daemon_job* self = &dj;
  options.share_subscription = [this, self](const net::amqp_receiver_config& sub) {
    return shared_subscription(self->spec, sub);
  };
  options.on_notice = [this, self](const std::string& text) {
    log_.write("warn", self->name, "acks_source", details().str("message", text));
  };
  options.on_delivery = [this](const delivery_event& e) {
    std::lock_guard lock(metrics_mutex_);
    ++deliveries_[static_cast<std::size_t>(e.outcome)];
    if (e.outcome != delivery_outcome::no_ack)
      ack_latency_.observe(static_cast<double>(e.latency_ms) / 1000.0);
  };
  options.on_acks_wait = [this, self] {
    {
      std::lock_guard lock(jobs_mutex_);
      self->acks_now.waiting_phase = true;
      self->last_result = steady::now();
    }
    log_.write("info", self->name, "job_waiting_for_acks",
               details()
                   .num("waiting", self->session->acks_waiting())
                   .num("at_most_s", std::ceil(self->session->acks_seconds_left())));
  };
}

// The session: the acks' source first (nothing sent before it can be relied
// on), the rollout, the wait for acks, the outputs.
void daemon_service::run_job(const std::shared_ptr<daemon_job>& dj_ptr) {
  daemon_job* self = dj_ptr.get();
  self->session->async_run([this, self](boost::system::error_code ec, net::session_outcome o) {
    end_job(*self, ec, std::move(o));
  });
}

// The session is over (its outputs written): the job is ready for settle().
// A cancel or a drain before anything was sent ends it cancelled, every
// device on record (record_early_cancel).
void daemon_service::end_job(daemon_job& dj, boost::system::error_code ec, net::session_outcome o) {
  const auto& problem = !o.deliveries_problem.empty() ? o.deliveries_problem : o.outputs_problem;
  if (!problem.empty())
    log_.write("error", dj.name, "result_json", details().str("error", problem));
  {
    std::lock_guard lock(jobs_mutex_);
    if (ec) {
      dj.startup_error =
          ec == net::session_errc::acks_source ? o.error + " (nothing was sent)" : o.error;
    } else {
      dj.summary = std::move(o.summary);
    }
    dj.failure = std::move(o.failure);
    dj.phase = job_phase::finished;
  }
  dj.done = true;
  wake();
}

void daemon_service::cancel_job(daemon_job& dj) {
  // The sending stops; what still waits for its acknowledgement is left to a resume.
  if (dj.session) dj.session->cancel();
}

// On the loop's thread: what the admin port shows of the acks.
void daemon_service::sample_acks() {
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_) {
      if (!j->session || !j->acks_now.enabled || j->phase != job_phase::running) continue;
      j->acks_now.waiting = j->session->acks_waiting();
      j->acks_now.counts = j->session->deliveries();
      j->acks_now.source = j->session->acks_source_state();
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
