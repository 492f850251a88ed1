// The dispatcher (see dispatcher.hpp): tokens, stop, outcomes. The
// lanes' actions and events are in dispatcher_lanes.cpp; progress, drain
// and summary in dispatcher_report.cpp; the input (batches read, the passes
// of a phased rollout, the next batch) in dispatcher_input.cpp.
#include "core/dispatch/dispatcher.hpp"

#include "core/dispatch/lane.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace fleetcast {

std::string_view to_string(attempt_outcome o) noexcept {
  switch (o) {
    case attempt_outcome::accounted:
      return "accounted";
    case attempt_outcome::throttled:
      return "throttled";
    case attempt_outcome::resent:
      return "resent";
    case attempt_outcome::no_answer:
      return "no_answer";
    case attempt_outcome::not_sent:
      return "not_sent";
    case attempt_outcome::split_too_long:
      return "split_too_long";
    case attempt_outcome::split_permission:
      return "split_permission";
    case attempt_outcome::token_refused:
      return "token_refused";
    case attempt_outcome::batch_rejected:
      return "batch_rejected";
    case attempt_outcome::failed_unknown:
      return "failed_unknown";
    case attempt_outcome::job_failed:
      return "job_failed";
  }
  return "other";
}

namespace {

attempt_outcome outcome_of(const attempt_result& r, const attempt_verdict& v) noexcept {
  if (r.reached == attempt_result::stage::not_written) return attempt_outcome::not_sent;
  if (r.reached == attempt_result::stage::no_answer) return attempt_outcome::no_answer;
  if (v.slow_down) return attempt_outcome::throttled;
  switch (v.action) {
    case attempt_action::account:
      return attempt_outcome::accounted;
    case attempt_action::resend:
      return attempt_outcome::resent;
    case attempt_action::retry:
      return attempt_outcome::no_answer;
    case attempt_action::fail_uncertain:
      return attempt_outcome::failed_unknown;
    case attempt_action::refresh_token:
      return attempt_outcome::token_refused;
    case attempt_action::split_too_long:
      return attempt_outcome::split_too_long;
    case attempt_action::split_permission:
      return attempt_outcome::split_permission;
    case attempt_action::fail_batch:
      return attempt_outcome::batch_rejected;
    case attempt_action::fail_job:
      return attempt_outcome::job_failed;
  }
  return attempt_outcome::job_failed;
}

}  // namespace

std::uint64_t parse_retry_after(std::string_view value) noexcept {
  // Delta-seconds only; an HTTP date or anything else counts as absent.
  std::uint64_t v = 0;
  for (char ch : value) {
    if (ch < '0' || ch > '9') return 0;
    v = std::min<std::uint64_t>(v * 10 + static_cast<unsigned>(ch - '0'), 1ULL << 40);
  }
  return v;
}

// ------------------------------------------------------------------ sink

void dispatcher::counting_sink::on_result(const device_result& in) {
  // Every result passes here on its way out: a secret a peer echoed is
  // redacted, and a message is cut to what a line keeps (a failure that
  // many devices share is kept whole once, in the job's reason).
  const device_result* r = &in;
  device_result clean;
  const auto& secrets = secret_registry::process();
  const bool msg_secret = secrets.mentions(in.msg);
  if (msg_secret || in.msg.size() > line_message_max || secrets.mentions(in.ticket)) {
    clean = in;
    msg_scratch =
        cut_text(msg_secret ? secrets.redacted(in.msg) : std::string(in.msg), line_message_max);
    ticket_scratch = secrets.redacted(in.ticket);
    clean.msg = msg_scratch;
    clean.ticket = ticket_scratch;
    r = &clean;
  }
  self.summary_.count(*r);
  self.sink_.on_result(*r);
  if (r->reason == outcome_reason::invalid_record || r->reason == outcome_reason::duplicate) return;
  const auto phase = self.guard_.phase();
  self.guard_.on_result(r->reason, self.cohort_of(r->device), r->index, self.results_now_us_);
  if (self.guard_.aborted() && !self.stopping_) {  // stop sending at once
    self.stop(job_state::aborted, self.guard_.verdict());
  } else if (self.guard_.phase() != phase) {
    self.effects_.wake = true;  // the next phase may go
  }
}

void dispatcher::counting_sink::flush() {
  self.sink_.flush();
  if (const auto f = self.sink_.failure(); !f.empty()) self.fail_outputs(f);
}

// ------------------------------------------------------------------ set-up

dispatcher::dispatcher(const job& j, device_stream& devices, result_sink& sink,
                       dispatch_hooks hooks, unsigned lanes, std::uint64_t seed,
                       const phase_plan* plan)
    : j_(j),
      devices_(devices),
      sink_(sink),
      hooks_(std::move(hooks)),
      encoder_(j.cmd),
      sizer_(j.batch.max_devices),
      chunks_(j.batch.max_devices),
      requests_bucket_(j.rate.requests_per_second, j.rate.burst),
      devices_bucket_(j.rate.devices_per_second,
                      std::max(j.rate.burst, static_cast<double>(j.batch.max_devices))),
      adapt_(j.rate.requests_per_second),
      retry_(j.retry),
      plan_(plan),
      guard_(j.rollout, j.rate.requests_per_second, plan),
      gateways_(j.rollout.max_per_gateway),
      rng_(seed) {
  lanes = std::max(1u, lanes);
  for (unsigned i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<lane_state>(j, i));
  lanes_running_ = lanes;
}

dispatcher::~dispatcher() = default;

void dispatcher::start(std::int64_t now_us, std::int64_t wall_us, std::string token,
                       std::string host_header) {
  start_us_ = now_us;
  reported_at_us_ = now_us;
  host_header_ = std::move(host_header);
  summary_.name = j_.name;
  if (j_.rollout.not_before)
    window_start_us_ = now_us + *j_.rollout.not_before * 1'000'000 - wall_us;
  if (j_.rollout.not_after) window_end_us_ = now_us + *j_.rollout.not_after * 1'000'000 - wall_us;
  if (token.empty()) {
    token_phase_ = token_phase::wanted;
    token_startup_ = true;
  } else {
    use_token(std::move(token));
  }
  update_rate(now_us);
  if (guard_.phases() > 1) {
    if (!plan_ || !hooks_.reopen_input) {
      startup_error_ =
          "a rollout in phases (rollout.phases or canary_devices) needs a census of the device "
          "list and a list that can be read again";
      stop(job_state::failed, startup_error_);
      return;
    }
    devices_.set_filter(
        [p = plan_](const pkdk_view& d, std::uint64_t f) { return p->phase_of(d, f) == 0; }, true);
  }
}

// ------------------------------------------------------------------ tokens

void dispatcher::use_token(std::string fresh) {
  token_ = std::move(fresh);
  ++token_generation_;
  secret_registry::process().add(token_);  // an echo of it is redacted everywhere
}

std::optional<token_request> dispatcher::take_token_request() {
  if (token_phase_ != token_phase::wanted) return std::nullopt;
  if (stopping_) {  // stopped before the fetch began: nothing to fetch for
    token_phase_ = token_phase::ready;
    token_startup_ = false;
    effects_.wake = true;
    return std::nullopt;
  }
  token_phase_ = token_phase::fetching;
  return token_request{token_startup_};
}

void dispatcher::on_token(std::string fresh, std::int64_t now_us) {
  const bool startup = token_startup_;
  token_phase_ = token_phase::ready;
  token_startup_ = false;
  effects_.wake = true;
  if (startup) {
    use_token(std::move(fresh));
    return;
  }
  if (stopping_) return;  // cancelled or failed meanwhile: the waiting batches are drained
  if (fresh == token_) {
    stop(job_state::failed,
         j_.auth.kind == auth_config::source::token_command
             ? "the token was refused (5032) and auth.token_command printed the same token: "
               "rotate the token at its source and resume"
             : "the token was refused (5032) and no fresh token is available: rotate the token "
               "at its source (auth) and resume");
    return;
  }
  use_token(std::move(fresh));
  while (!awaiting_token_.empty()) {
    ready_.push_front(std::move(awaiting_token_.back()));
    awaiting_token_.pop_back();
  }
  (void)now_us;
}

void dispatcher::on_token_failed(std::string_view error, bool cancelled, std::int64_t) {
  const bool startup = token_startup_;
  token_phase_ = token_phase::ready;
  token_startup_ = false;
  effects_.wake = true;
  if (cancelled) {
    stop(job_state::cancelled);
  } else if (startup) {
    startup_error_ = outside_text(error, reason_text_max);
    stop(job_state::failed, startup_error_);
  } else if (!stopping_) {
    stop(job_state::failed,
         fmt::format("the token was refused (5032) and a fresh one cannot be had: {}", error));
  }
}

void dispatcher::on_delivery(delivery_outcome outcome, std::uint64_t index, std::int64_t now_us) {
  guard_.on_delivery(outcome, index, now_us);
  if (guard_.aborted() && !stopping_) stop(job_state::aborted, guard_.verdict());
  effects_.wake = true;  // the canary may have been judged: sending goes on
}

void dispatcher::on_token_rotated(std::string fresh) {
  if (!fresh.empty() && fresh != token_) use_token(std::move(fresh));
}

// A batch whose token was refused: a fresh token first when the refused one
// is still in use (other connections go on meanwhile), else at once.
void dispatcher::refresh_token(pending_ptr p) {
  if (p->token_generation != token_generation_) {  // a fresher token is in use already
    ready_.push_front(std::move(p));
    return;
  }
  awaiting_token_.push_back(std::move(p));
  if (token_phase_ == token_phase::ready) token_phase_ = token_phase::wanted;
}

// ------------------------------------------------------------------ stop

// Results cannot be kept (a full disk): stop at once, failed, whatever
// stopped it before; what is not recorded is sent again by --resume.
void dispatcher::fail_outputs(std::string_view why) {
  if (outputs_failed_) return;
  outputs_failed_ = true;
  stop(job_state::failed);
  state_ = job_state::failed;
  failure_ = fmt::format("the results cannot be written: {} (free space, then --resume)", why);
}

// Stops sending (the first reason wins): requests in flight finish, the rest
// is recorded skipped by drain_some().
void dispatcher::stop(job_state why, std::string failure_text) {
  if (stopping_) return;
  stopping_ = true;
  state_ = why;
  if (!failure_text.empty()) failure_ = outside_text(failure_text, reason_text_max);
  if (token_phase_ == token_phase::fetching) effects_.kill_token = true;
  effects_.wake = true;
}

void dispatcher::cancel(cancel_kind kind) {
  ++cancels_;
  stop(job_state::cancelled);
  if (kind == cancel_kind::cut || cancels_ >= 2) effects_.cut = effects_.wake = true;
}

void dispatcher::fail(std::string_view why) {
  stop(job_state::failed, std::string(why));
}

dispatch_effects dispatcher::take_effects() noexcept {
  return std::exchange(effects_, {});
}

bool dispatcher::finished() const {
  if (token_phase_ == token_phase::fetching) return false;  // ends soon once stopping
  if (token_phase_ == token_phase::wanted && token_startup_ && !stopping_) return false;
  return stopping_ ? in_flight_ == 0
                   : input_done_ && ready_.empty() && delayed_.empty() && awaiting_token_.empty() &&
                         in_flight_ == 0 && chunks_.empty() && token_phase_ == token_phase::ready;
}

// No connection could be made: sending pauses (the connections back off and
// try again) until timeouts.unreachable_s have passed without one.
void dispatcher::note_unreachable(std::string why, std::int64_t now_us) {
  if (!unreachable_since_us_) unreachable_since_us_ = now_us;
  unreachable_why_ = std::move(why);
  if (now_us - *unreachable_since_us_ >=
      static_cast<std::int64_t>(j_.timeouts.unreachable_s) * 1'000'000) {
    stop(job_state::failed,
         fmt::format("no connection could be made for {} s (timeouts.unreachable_s): {}",
                     j_.timeouts.unreachable_s, unreachable_why_));
  }
}

void dispatcher::tick(std::int64_t now_us) {
  if (adapt_.tick(now_us)) update_rate(now_us);
  if (window_end_us_ && now_us >= *window_end_us_)
    stop(job_state::cancelled, "the time window ended (rollout.not_after)");
}

// The request rate in force: the configured one as AIMD has it, under the
// ramp's while a ramp is on (0 = no limit).
void dispatcher::update_rate(std::int64_t now_us) {
  const double aimd = adapt_.rate();
  const double ramp = guard_.ramp_rate();
  const double rate = ramp <= 0 ? aimd : aimd <= 0 ? ramp : std::min(aimd, ramp);
  if (rate != requests_bucket_.rate()) requests_bucket_.set_rate(rate, now_us);
}

// ------------------------------------------------------------------ outcomes

void dispatcher::fail(pending& p, outcome_reason reason, std::optional<std::int64_t> code,
                      std::string_view msg, std::int64_t now_us) {
  results_now_us_ = now_us;
  accountant::account_all(p.devices, reason, code, msg, out_);
  out_.flush();
  release(p.devices);
}

void dispatcher::fail_job(pending& p, std::string msg, std::int64_t now_us) {
  stop(job_state::failed, std::move(msg));
  fail(p, outcome_reason::job_failed, p.last_code, failure_, now_us);
}

void dispatcher::retry_later(pending_ptr p, std::uint32_t retry_after_s, std::int64_t now_us) {
  if (!retry_.allow_retry(p->tries)) {
    budget_refusals_ += retry_.refused_by_budget(p->tries);
    const auto msg = fmt::format("{} (gave up after {} tr{}{})", p->last_why, p->tries,
                                 p->tries == 1 ? "y" : "ies",
                                 retry_.budget_exhausted() ? "; retry budget exhausted" : "");
    fail(*p, outcome_reason::transport_failed, p->last_code, msg, now_us);
    return;
  }
  const auto delay = retry_.delay_ms(p->tries + 1, unit(), retry_after_s * 1000);
  p->ready_us = now_us + static_cast<std::int64_t>(delay) * 1000;
  delayed_.push_back(std::move(p));
  std::push_heap(delayed_.begin(), delayed_.end(), later);
}

// Re-slices a batch into pieces of at most `size` devices, first in line.
void dispatcher::split_front(pending_ptr p, std::size_t size) {
  const std::size_t n = p->devices.size();
  size = std::clamp<std::size_t>(size, 1, (n + 1) / 2);
  std::vector<pending_ptr> pieces;
  for (std::size_t first = 0; first < n; first += size) {
    auto piece = std::make_unique<pending>();
    piece->devices = p->devices.slice(first, first + size);
    piece->tries = p->tries;
    pieces.push_back(std::move(piece));
  }
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) ready_.push_front(std::move(*it));
}

// What one try came to: account it, retry it, split it, or stop.
void dispatcher::settle(pending_ptr p, const attempt_result& r, const decoded_response* answer,
                        std::uint32_t retry_after_s, std::string_view detail, std::int64_t now_us) {
  results_now_us_ = now_us;
  effects_.wake = true;
  if (r.reached != attempt_result::stage::not_written) p->devices.note_attempt();
  const auto v = classify_attempt(r, p->devices.size(), j_.retry.unknown_outcome);
  if (hooks_.on_attempt) hooks_.on_attempt(outcome_of(r, v), p->devices.size());
  if (v.slow_down) {
    const double elapsed = std::max(1e-3, static_cast<double>(now_us - start_us_) / 1e6);
    adapt_.on_throttle(now_us, static_cast<double>(summary_.requests) / elapsed);
    update_rate(now_us);
  }
  if (r.reached == attempt_result::stage::answered) {
    p->last_code = r.decoded ? std::optional<std::int64_t>(r.code) : std::nullopt;
    p->last_why = r.decoded && r.code != 200
                      ? fmt::format("{}: {}", v.why, outside_text(answer ? answer->msg : ""))
                      : fmt::format("{} (HTTP {})", v.why, r.http_status);
  } else {
    p->last_why = detail.empty() ? std::string(v.why) : std::string(detail);
  }
  switch (v.action) {
    case attempt_action::account:
      acct_.account_answer(p->devices, *answer, out_);
      out_.flush();
      release(p->devices);
      update_rate(now_us);  // a ramp steps up with successes
      sizer_.on_accepted(p->devices.size());
      chunks_.set_max_devices(sizer_.current());
      break;
    case attempt_action::resend:
      retry_later(std::move(p), retry_after_s, now_us);
      break;
    case attempt_action::retry:
      p->devices.mark_uncertain();
      retry_later(std::move(p), retry_after_s, now_us);
      break;
    case attempt_action::fail_uncertain:
      p->devices.mark_uncertain();
      fail(*p, outcome_reason::transport_failed, p->last_code, p->last_why, now_us);
      break;
    case attempt_action::refresh_token:
      refresh_token(std::move(p));
      break;
    case attempt_action::split_too_long:
      // Nothing was executed. Pieces of the size the search tries next: one
      // refusal teaches every piece.
      sizer_.on_too_long(p->devices.size());
      chunks_.set_max_devices(sizer_.current());
      split_front(std::move(p), sizer_.current());
      break;
    case attempt_action::split_permission: {
      const std::size_t half = (p->devices.size() + 1) / 2;  // halves isolate the refused
      split_front(std::move(p), half);
      break;
    }
    case attempt_action::fail_batch:
      fail(*p, outcome_reason::batch_rejected, p->last_code,
           answer && !answer->msg.empty() ? answer->msg : std::string_view(p->last_why), now_us);
      break;
    case attempt_action::fail_job:
      fail_job(*p, p->last_why, now_us);
      break;
  }
}

}  // namespace fleetcast
