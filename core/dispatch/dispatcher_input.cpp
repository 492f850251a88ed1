// The dispatcher's input (see dispatcher.hpp): batches read from the
// device list as far as the rollout guard admits devices, one pass of the
// list per phase (a drain after a stop reads the phases not yet read in one
// more pass), and the next batch a lane sends.
#include "core/dispatch/dispatcher.hpp"

#include "core/dispatch/lane.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace fleetcast {

bool dispatcher::admit_waiting() {
  gateway_cap::waiting_device w;
  if (!gateways_.next_ready(w)) return false;
  chunks_.add(w.index, w.device.view(), w.uncertain);
  guard_.on_admitted(1);
  return true;
}

void dispatcher::release(const batch& b) {
  for (std::size_t i = 0; i < b.size(); ++i) gateways_.release(b.device(i));
}

// The next batch from the input, as far as the guard admits devices
// (`draining`: all of them, to be recorded skipped after a stop).
dispatcher::pending_ptr dispatcher::read_batch(std::int64_t now_us, bool draining) {
  results_now_us_ = now_us;
  device_record record;
  record_kind kind;
  // Draining, records already done (a resume) or not devices are skipped
  // here without a batch: a bounded number a call, so drain_some's slices are.
  const auto first = records_;
  if (!draining) report_phase_read(now_us);
  if (!draining && !stopping_ && guard_.phase() != pass_ && !input_done_ &&
      !begin_pass(guard_.phase(), guard_.phase(), false))
    return nullptr;
  while (!chunks_.full() && (draining || guard_.admitting())) {
    if (draining && records_ - first >= drain_read_max) break;
    if (!draining && admit_waiting()) continue;
    if (input_done_ || (pass_read_ && !draining)) break;  // only waiting devices are left
    if (!draining && gateways_.full()) break;             // wait for room before reading on
    if (!devices_.next(record, kind)) {
      if (const auto e = end_of_pass(now_us, draining); e == pass_end::next_pass)
        continue;
      else if (e == pass_end::phase_read)
        break;
      input_done_ = true;
      if (!devices_.fatal_error().empty() && failure_.empty()) {
        failure_ = "the device list cannot be read further: " + devices_.fatal_error();
        state_ = job_state::failed;
      } else if (records_ == 0 && failure_.empty()) {
        // The reference page's answer to an empty list, said before sending.
        failure_ =
            "the device list has no records: nothing to send (5311 Please enter device list)";
        state_ = job_state::failed;
      }
      break;
    }
    ++records_;
    if (hooks_.already_done && hooks_.already_done(record.index)) continue;
    if (kind != record_kind::device) {
      out_.on_result(skip_result(record, kind));
      continue;
    }
    if (guard_.any_excluded()) {  // its cohort broke a rule: not sent
      if (const auto c = cohort_of(record.device); guard_.excluded(c)) {
        device_result r;
        r.index = record.index;
        r.device = record.device;
        r.reason = outcome_reason::excluded;
        r.msg = guard_.exclusion_of(c);
        r.uncertain = hooks_.maybe_sent && hooks_.maybe_sent(record.index);
        out_.on_result(r);
        continue;
      }
    }
    const bool uncertain = hooks_.maybe_sent && hooks_.maybe_sent(record.index);
    if (!draining && !gateways_.admit(record.index, record.device, uncertain)) continue;
    chunks_.add_hashed(record.index, record.device, record.fingerprint, uncertain);
    guard_.on_admitted(1);
  }
  if (chunks_.empty()) {
    out_.flush();
    return nullptr;
  }
  auto p = std::make_unique<pending>();
  chunks_.take(p->devices);
  return p;
}

bool dispatcher::begin_pass(unsigned first, unsigned last, bool invalid_too) {
  std::string error;
  auto reader = hooks_.reopen_input ? hooks_.reopen_input(error) : nullptr;
  if (!reader) {
    if (failure_.empty()) {
      failure_ = fmt::format("the device list cannot be read again for phase {}: {}", first,
                             error.empty() ? "no way to reopen it" : error);
      if (!stopping_) stop(job_state::failed);
      state_ = job_state::failed;
    }
    input_done_ = true;
    return false;
  }
  devices_.restart(std::move(reader));
  devices_.set_filter(
      [p = plan_, first, last](const pkdk_view& d, std::uint64_t f) {
        const auto k = p->phase_of(d, f);
        return k >= first && k <= last;
      },
      invalid_too);
  pass_ = first;
  pass_read_ = pass_reported_ = false;
  return true;
}

bool dispatcher::report_phase_read(std::int64_t now_us) {
  if (pass_read_ && !pass_reported_ && gateways_.waiting() == 0) {
    pass_reported_ = true;  // every device of the phase admitted: it can be judged
    guard_.on_phase_read(now_us);
  }
  return guard_.phase() != pass_;
}

dispatcher::pass_end dispatcher::end_of_pass(std::int64_t now_us, bool draining) {
  const unsigned last = guard_.phases() - 1;
  if (pass_ >= last || drain_pass_ || !devices_.fatal_error().empty()) return pass_end::input_end;
  if (!draining) {
    pass_read_ = true;
    // A phase judged at once (nothing of it left to send) opens the next now.
    if (report_phase_read(now_us) && !stopping_)
      return begin_pass(guard_.phase(), guard_.phase(), false) ? pass_end::next_pass
                                                               : pass_end::input_end;
    return pass_end::phase_read;  // the next pass begins when the guard opens the next phase
  }
  // Stopped: the phases not yet read are read once more, to be recorded.
  drain_pass_ = true;
  return begin_pass(pass_ + 1, last, false) ? pass_end::next_pass : pass_end::input_end;
}

act_result dispatcher::on_operator(operator_act act, std::int64_t now_us) {
  if (stopping_) return {false, fmt::format("the rollout is stopping ({})", to_string(state_))};
  switch (act) {
    case operator_act::approve: {
      auto r = guard_.approve(now_us);
      if (r.applied) effects_.wake = true;
      return r;
    }
    case operator_act::pause:
      if (paused_) return {false, "already paused"};
      paused_ = true;
      paused_at_us_ = now_us;
      return {true,
              fmt::format("paused: nothing more is sent; {} request{} in flight finish{}",
                          in_flight_, in_flight_ == 1 ? "" : "s", in_flight_ == 1 ? "es" : "")};
    case operator_act::resume:
      if (!paused_) return {false, "not paused"};
      paused_ = false;
      effects_.wake = true;
      return {true, fmt::format("continued after {:.0f} s paused",
                                static_cast<double>(now_us - paused_at_us_) / 1e6)};
  }
  return {false, "unknown act"};
}

dispatcher::pending_ptr dispatcher::next_batch(std::int64_t now_us) {
  if (stopping_ || !started_ || paused_) return nullptr;
  if (window_end_us_ && now_us >= *window_end_us_) {
    stop(job_state::cancelled, "the time window ended (rollout.not_after)");
    return nullptr;
  }
  if (window_start_us_ && now_us < *window_start_us_) return nullptr;  // not yet
  guard_.tick(now_us);
  if (!ready_.empty()) {
    auto p = std::move(ready_.front());
    ready_.pop_front();
    return p;
  }
  if (!delayed_.empty() && delayed_.front()->ready_us <= now_us) {
    std::pop_heap(delayed_.begin(), delayed_.end(), later);
    auto p = std::move(delayed_.back());
    delayed_.pop_back();
    return p;
  }
  if (!input_done_ || gateways_.waiting() > 0) return read_batch(now_us);
  return nullptr;
}

}  // namespace fleetcast
