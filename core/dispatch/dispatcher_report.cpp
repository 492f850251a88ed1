// The dispatcher's reports (see dispatcher.hpp): the progress snapshot with
// what sending waits for, and the end of a run: everything not sent is
// recorded skipped, once, and the summary is filled in.
#include "core/dispatch/dispatcher.hpp"

#include "core/dispatch/lane.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

namespace fleetcast {

dispatch_progress dispatcher::progress(std::int64_t now_us) {
  dispatch_progress p;
  p.records = records_;
  p.done = summary_.records;
  p.succeeded = summary_.count_of(device_status::succeeded);
  p.failed = summary_.count_of(device_status::failed);
  p.skipped = summary_.count_of(device_status::skipped);
  p.by_reason = summary_.by_reason;
  p.requests = summary_.requests;
  p.budget_refusals = budget_refusals_;
  p.guard_stage = guard_.stage();
  p.verdict = guard_.verdict();
  for (const auto& e : guard_.exclusions()) p.verdict += (p.verdict.empty() ? "" : "; ") + e;
  p.retries = summary_.retries;
  p.batch_size = sizer_.current();
  p.elapsed_s = static_cast<double>(now_us - start_us_) / 1e6;
  p.rate_wait_s = static_cast<double>(rate_wait_us_) / 1e6;
  p.input_complete = input_done_;
  const auto now = now_us;
  if (unreachable_since_us_ && !stopping_) {
    p.waiting_for =
        fmt::format("no connection for {:.0f} s: {}",
                    static_cast<double>(now - *unreachable_since_us_) / 1e6, unreachable_why_);
  } else if (token_phase_ == token_phase::fetching && !token_startup_) {
    p.waiting_for = j_.auth.refreshes() ? "a fresh token (the refresh endpoint)"
                    : j_.auth.kind == auth_config::source::token_command
                        ? "a fresh token (auth.token_command)"
                        : "a fresh token";
  } else if (paused_ && !stopping_) {
    p.held = true;
    p.waiting_for =
        fmt::format("a continue: paused by an operator {:.0f} s ago (fleetcast continue)",
                    static_cast<double>(now - paused_at_us_) / 1e6);
  } else if (now < long_wait_until_us_) {
    p.held = true;
    p.waiting_for = fmt::format("{} ({:.0f} s left)", long_wait_why_,
                                static_cast<double>(long_wait_until_us_ - now) / 1e6);
  } else if (window_start_us_ && now < *window_start_us_ && !stopping_) {
    p.held = true;
    p.waiting_for = fmt::format("the time window (opens in {:.0f} s)",
                                std::ceil(static_cast<double>(*window_start_us_ - now) / 1e6));
  } else if (auto held = guard_.holding_for(now); !held.empty() && !stopping_) {
    p.held = true;
    p.waiting_for = std::move(held);
  } else if (gateways_.waiting() > 0 && ready_.empty() && delayed_.empty() && !stopping_) {
    p.waiting_for = fmt::format("the gateway cap ({} devices wait for room behind their gateway)",
                                gateways_.waiting());
  } else if (lanes_running_ > 0 && now > reported_at_us_ && !stopping_) {
    // Connections that spent most of the last interval waiting for a slot.
    const double idle = static_cast<double>(rate_wait_us_ - reported_wait_us_) /
                        (static_cast<double>(now - reported_at_us_) * lanes_running_);
    if (idle > 0.5) p.waiting_for = "the rate limit";
  }
  reported_at_us_ = now;
  reported_wait_us_ = rate_wait_us_;
  return p;
}

// After the lanes end: everything not sent is skipped, once, in slices of
// about `max_records` (what is held in memory first, then the records not
// read yet, a batch's worth at a time), so that a driver can yield to its
// loop between slices. True once nothing is left.
bool dispatcher::drain_some(std::int64_t now_us, std::size_t max_records) {
  results_now_us_ = now_us;
  const auto reason = state_ == job_state::failed    ? outcome_reason::job_failed
                      : state_ == job_state::aborted ? outcome_reason::aborted
                                                     : outcome_reason::cancelled;
  const std::string& msg = !failure_.empty() ? failure_ : std::string(to_string(reason));
  std::size_t done = 0;
  auto skip = [&](pending& p) {
    done += p.devices.size();
    accountant::account_all(p.devices, reason, p.last_code, msg, out_);
  };
  if (!drained_held_) {  // what is in memory: bounded by the queues' own limits
    drained_held_ = true;
    for (auto& l : lanes_) {  // a lane that ended early keeps nothing, but be sure
      if (l->staged) unstage(*l);
      for (auto& w : l->window) {
        w->devices.mark_uncertain();  // written: it may have been executed
        ready_.push_back(std::move(w));
      }
      l->window.clear();
    }
    for (auto& p : ready_) skip(*p);
    for (auto& p : delayed_) skip(*p);
    for (auto& p : awaiting_token_) skip(*p);
    ready_.clear();
    delayed_.clear();
    awaiting_token_.clear();
    gateways_.drain([&](const gateway_cap::waiting_device& w) {  // behind a full gateway
      pending p;
      p.devices.add(w.index, w.device.view(), 0, w.uncertain);
      skip(p);
    });
  }
  const auto read_before = records_;  // read (and skipped) by this call
  while (done + (records_ - read_before) < max_records) {
    if (!chunks_.empty()) {
      pending p;
      chunks_.take(p.devices);
      skip(p);
      continue;
    }
    if (input_done_) break;
    if (auto p = read_batch(now_us, true)) skip(*p);  // the next batch's worth of records
  }
  const bool all = input_done_ && chunks_.empty();
  out_.flush();
  return all;
}

run_summary dispatcher::finish(std::int64_t now_us) {
  while (!drain_some(now_us, SIZE_MAX)) {
  }
  summary_.state = state_;
  if (guard_.phases() > 1) summary_.stage = guard_.stage();
  if (summary_.reason.empty() && guard_.any_excluded()) {  // completed without them: said
    for (const auto& e : guard_.exclusions())
      summary_.reason += (summary_.reason.empty() ? "" : "; ") + e;
  }
  summary_.elapsed_s = static_cast<double>(now_us - start_us_) / 1e6;
  // The size settled on: the largest the server accepted (the search's next
  // probe may never have been sent).
  summary_.batch_size = sizer_.largest_accepted() ? sizer_.largest_accepted() : sizer_.current();
  return summary_;
}

}  // namespace fleetcast
