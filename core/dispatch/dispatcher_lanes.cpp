// The dispatcher's lanes (see dispatcher.hpp): a connection's next action
// and what came of it: connected or not, written or not, answered or not.
#include "core/dispatch/dispatcher.hpp"

#include "core/dispatch/lane.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace fleetcast {

// ------------------------------------------------------------------ lanes

void dispatcher::stage(lane_state& l, pending_ptr p, std::int64_t now_us) {
  ++in_flight_;
  auto go = std::max(requests_bucket_.reserve(1, now_us),
                     devices_bucket_.reserve(static_cast<double>(p->devices.size()), now_us));
  if (hooks_.shared_gate) go = std::max(go, hooks_.shared_gate(now_us));
  if (go > now_us) rate_wait_us_ += go - now_us;
  l.staged = std::move(p);
  l.go_us = go;
}

void dispatcher::unstage(lane_state& l) {
  --in_flight_;
  ready_.push_front(std::move(l.staged));
}

dispatch_action dispatcher::write_action(lane_state& l, std::int64_t now_us) {
  auto& p = *l.staged;
  l.body.clear();
  encoder_.encode(p.devices, l.body);
  if (hooks_.before_send) {
    if (auto problem = hooks_.before_send(p.devices); !problem.empty()) {
      unstage(l);  // not sent: what cannot be journaled must not go
      fail_outputs(problem);
      return next(l.index, now_us);
    }
  }
  p.token_generation = token_generation_;
  ++p.tries;
  ++summary_.requests;
  retry_.count_request();
  l.head.clear();
  fmt::format_to(std::back_inserter(l.head),
                 "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: "
                 "application/json\r\nContent-Length: {}\r\n\r\n",
                 j_.endpoint.target(), host_header_, token_, l.body.size());
  l.hand_out(lane_state::report::written);
  dispatch_action a;
  a.what = dispatch_action::kind::write;
  a.head = l.head;
  a.body = l.body;
  return a;
}

dispatch_action dispatcher::next(unsigned lane, std::int64_t now_us) {
  auto& l = *lanes_.at(lane);
  using kind = dispatch_action::kind;
  using link = lane_state::link;
  if (l.awaited != lane_state::report::none)
    throw std::logic_error("dispatcher: next() before the last action was reported");
  if (l.state == link::ended) return {kind::done};
  if (l.state == link::must_close) {
    l.state = link::closed;
    return {kind::close};
  }
  // Before anything is sent: the first token, then lane 0's first connection.
  if (!started_ && !stopping_) {
    if (lane == 0 && token_phase_ == token_phase::ready && l.backoff_until_us <= now_us) {
      l.hand_out(lane_state::report::connected);
      return {kind::connect};
    }
    const auto until =
        lane == 0 && l.backoff_until_us > now_us ? l.backoff_until_us : now_us + 1'000'000;
    return {kind::wait, until, lane != 0 || token_phase_ != token_phase::ready};
  }
  if (l.staged) {
    if (stopping_ || paused_) {  // stopped (it will be skipped) or paused while it waited
      unstage(l);
      if (paused_ && !stopping_) return next(lane, now_us);
    } else if (l.go_us > now_us) {
      return {kind::wait, l.go_us, false};
    } else if (!l.open()) {
      l.hand_out(lane_state::report::connected);
      return {kind::connect};
    } else {
      return write_action(l, now_us);
    }
  }
  if (l.window.size() < l.depth && l.backoff_until_us <= now_us) {
    if (auto p = next_batch(now_us)) {
      stage(l, std::move(p), now_us);
      return next(lane, now_us);
    }
  }
  if (!l.window.empty()) {
    l.hand_out(lane_state::report::read);
    return {kind::read};
  }
  if (finished()) {
    // Done; an open connection is clean (nothing in flight): the driver
    // closes it or keeps it for another rollout (a pool).
    l.state = link::ended;
    if (--lanes_running_ == 0) effects_.wake = true;
    return {kind::done};
  }
  std::int64_t wake = delayed_.empty() ? now_us + 1'000'000 : delayed_.front()->ready_us;
  wake = std::min(wake, guard_.next_change_us());  // the end of a canary wait
  if (window_start_us_ && *window_start_us_ > now_us) wake = std::min(wake, *window_start_us_);
  if (l.backoff_until_us > now_us) wake = std::min(wake, l.backoff_until_us);
  return {kind::wait, std::max(wake, now_us), true};
}

void dispatcher::on_connected(unsigned lane, const connect_result& r, std::int64_t now_us) {
  auto& l = *lanes_.at(lane);
  l.answer(lane_state::report::connected);
  const std::string_view why_not =
      r.ok() ? std::string_view() : (r.detail.empty() ? "the connection failed" : r.detail);
  if (!started_) {
    ++startup_attempts_;
    if (r.ok()) {
      started_ = true;
      l.state = lane_state::link::open;
      unreachable_since_us_.reset();
      effects_.wake = true;
      return;
    }
    if (startup_attempts_ >= std::max<std::uint32_t>(1, j_.retry.max_attempts)) {
      stop(job_state::failed, fmt::format("{} ({} tr{}; nothing was sent)", why_not,
                                          startup_attempts_, startup_attempts_ == 1 ? "y" : "ies"));
      return;
    }
    unreachable_since_us_ = unreachable_since_us_.value_or(now_us);
    unreachable_why_ = std::string(why_not);
    l.backoff_until_us = now_us + 1000 * static_cast<std::int64_t>(retry_.delay_ms(
                                             startup_attempts_ + 1, 0.5 + 0.5 * unit()));
    return;
  }
  if (!r.ok()) {
    // Not a try: nothing was sent. The batch waits for a connection; the job
    // fails only when none can be made for unreachable_s.
    if (l.staged) unstage(l);
    ++l.connect_failures;
    note_unreachable(std::string(why_not), now_us);
    l.backoff_until_us = now_us + 1000 * static_cast<std::int64_t>(retry_.delay_ms(
                                             std::min(l.connect_failures + 1, 8u), unit()));
    effects_.wake = true;
    return;
  }
  l.state = lane_state::link::open;
  l.connect_failures = 0;
  l.backoff_until_us = 0;
  unreachable_since_us_.reset();
}

void dispatcher::on_written(unsigned lane, const write_result& r, std::int64_t now_us) {
  auto& l = *lanes_.at(lane);
  l.answer(lane_state::report::written);
  auto p = std::move(l.staged);
  if (!r.ok()) {
    --in_flight_;
    settle(std::move(p), {attempt_result::stage::not_written}, nullptr, 0, {}, now_us);
    close_lane(l, true, now_us);  // written before, now unanswerable
    return;
  }
  p->written_us = now_us;
  l.window.push_back(std::move(p));
}

// The connection is closed: what it still had written is settled, as
// unknown behind a dead connection, as not read behind a closing answer.
void dispatcher::close_lane(lane_state& l, bool dead, std::int64_t now_us) {
  if (l.open()) l.state = lane_state::link::must_close;
  for (auto& w : l.window) {
    --in_flight_;
    const attempt_result r{dead ? attempt_result::stage::no_answer
                                : attempt_result::stage::not_written};
    if (!dead) --w->tries;  // not a try: the server never read it
    settle(std::move(w), r, nullptr, 0, {}, now_us);
  }
  l.window.clear();
}

void dispatcher::on_read(unsigned lane, const read_result& r, std::int64_t now_us) {
  auto& l = *lanes_.at(lane);
  l.answer(lane_state::report::read);
  pending_ptr p = std::move(l.window.front());
  l.window.pop_front();
  --in_flight_;
  attempt_result result;
  result.reached = r.answered ? attempt_result::stage::answered : attempt_result::stage::no_answer;
  std::uint32_t retry_after_s = 0;
  if (r.answered) {
    result.http_status = r.http_status;
    if (hooks_.on_answer) hooks_.on_answer(now_us - p->written_us);
    unreachable_since_us_.reset();
    const auto asked = parse_retry_after(r.retry_after);
    retry_after_s =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(asked, j_.retry.max_retry_after_s));
    if (asked >= 10) {
      long_wait_until_us_ = now_us + static_cast<std::int64_t>(retry_after_s) * 1'000'000;
      long_wait_why_ =
          asked > retry_after_s
              ? fmt::format(
                    "the server asked to wait {} s (Retry-After); waiting {} s "
                    "(retry.max_retry_after_s)",
                    asked, retry_after_s)
              : fmt::format("the server asked to wait {} s (Retry-After)", retry_after_s);
    }
    if (r.http_status == 200) {
      result.decoded = !l.decoder.decode(r.body, std::max(r.readable, r.body.size()));
      result.code = result.decoded ? l.decoder.response().code : 0;
    }
  }
  settle(std::move(p), result, result.decoded ? &l.decoder.response() : nullptr, retry_after_s,
         r.detail, now_us);
  if (!r.answered || !r.keep_alive) close_lane(l, !r.answered, now_us);
}

void dispatcher::on_lane_failed(unsigned lane, std::string_view why, std::int64_t now_us) {
  auto& l = *lanes_.at(lane);
  stop(job_state::failed, fmt::format("a connection failed: {}", why));
  if (l.staged) unstage(l);
  for (auto& w : l.window) {  // written: they may have been executed
    --in_flight_;
    w->devices.mark_uncertain();
    fail(*w, outcome_reason::job_failed, w->last_code, failure_, now_us);
  }
  l.window.clear();
  l.awaited = lane_state::report::none;  // whatever was handed out is over with the lane
  if (l.state != lane_state::link::ended) {
    l.state = lane_state::link::ended;
    --lanes_running_;
  }
  effects_.wake = true;
}

}  // namespace fleetcast
