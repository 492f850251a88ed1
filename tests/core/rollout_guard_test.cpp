// Canary gating and abort verdicts, with time passed in.
#include "core/dispatch/rollout_guard.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

namespace {
rollout_config config(std::uint64_t canary, double ratio, std::uint64_t min, double wait = 0) {
  rollout_config c;
  c.canary_devices = canary;
  c.abort_failure_ratio = ratio;
  c.abort_min_devices = min;
  c.canary_wait_s = wait;
  return c;
}
}  // namespace

TEST_CASE("the defaults change nothing: no canary, never an abort") {
  rollout_guard g(rollout_config{});
  CHECK(g.admit_limit() > 1'000'000'000);
  for (int i = 0; i < 1000; ++i) g.on_result(outcome_reason::transport_failed, i);
  CHECK(!g.aborted());  // 100% failed is not above a ratio of 1.0
}

TEST_CASE("abort once at least abort_min_devices are done and the failed ratio exceeds the limit") {
  rollout_guard g(config(0, 0.2, 100));
  for (int i = 0; i < 50; ++i) g.on_result(outcome_reason::device_failed, 0);
  CHECK(!g.aborted());  // 100% failed, but only 50 done
  for (int i = 0; i < 49; ++i) g.on_result(outcome_reason::accepted, 0);
  CHECK(!g.aborted());  // 99 done
  g.on_result(outcome_reason::accepted, 0);
  CHECK(g.aborted());  // 100 done, 50% failed
  CHECK(g.verdict().find("50 of 100 devices failed") != std::string::npos);
  CHECK(g.admit_limit() == 0);
  // Skips (aborted, cancelled) are not outcomes of the rollout.
  rollout_guard h(config(0, 0.2, 10));
  for (int i = 0; i < 100; ++i) h.on_result(outcome_reason::cancelled, 0);
  CHECK(!h.aborted());  // 100 skipped: nothing judged yet
  for (int i = 0; i < 8; ++i) h.on_result(outcome_reason::accepted, 0);
  h.on_result(outcome_reason::batch_rejected, 0);
  h.on_result(outcome_reason::missing_in_answer, 0);
  CHECK(!h.aborted());  // exactly 20%: not above
  h.on_result(outcome_reason::transport_failed, 0);
  CHECK(h.aborted());
}

TEST_CASE("a canary goes alone, then a good verdict opens the rollout after the wait") {
  rollout_guard g(config(10, 0.2, 0, 2.0));
  CHECK(g.in_canary());
  CHECK(g.admit_limit() == 10);
  g.on_admitted(6);
  CHECK(g.admit_limit() == 4);
  CHECK(g.holding_for(0).empty());  // the canary is still being sent
  g.on_admitted(4);
  CHECK(g.admit_limit() == 0);  // nothing more until the canary is judged
  for (int i = 0; i < 9; ++i)
    g.on_result(i == 0 ? outcome_reason::device_failed : outcome_reason::accepted, 1'000'000);
  CHECK(g.admit_limit() == 0);
  CHECK(g.holding_for(1'000'000) == "the canary's results (9 of 10 devices)");
  g.on_result(outcome_reason::accepted, 1'000'000);  // the last canary outcome: 10% failed
  CHECK(!g.aborted());
  CHECK(g.admit_limit() == 0);  // waiting canary_wait_s
  CHECK(g.holding_for(1'000'000) == "the canary's wait (2 s left)");
  CHECK(g.holding_for(2'500'000) == "the canary's wait (1 s left)");
  CHECK(g.next_change_us() == 3'000'000);
  g.tick(2'999'999);
  CHECK(g.admit_limit() == 0);
  g.tick(3'000'000);
  CHECK(g.admit_limit() > 1'000'000);
  CHECK(!g.in_canary());
  CHECK(g.holding_for(3'000'000).empty());
}

TEST_CASE("a bad canary aborts, a canary larger than the fleet is the whole fleet") {
  rollout_guard g(config(4, 0.2, 1000));
  g.on_admitted(4);
  g.on_result(outcome_reason::accepted, 0);
  g.on_result(outcome_reason::device_failed, 0);
  g.on_result(outcome_reason::accepted, 0);
  CHECK(!g.aborted());  // judged only as a whole
  g.on_result(outcome_reason::accepted, 0);
  CHECK(g.aborted());  // 25% > 20%, whatever abort_min_devices says
  CHECK(g.verdict().find("canary") != std::string::npos);

  rollout_guard small(config(100, 0.5, 0));
  small.on_admitted(3);
  small.on_input_end();
  CHECK(small.admit_limit() == 0);
  for (int i = 0; i < 3; ++i) small.on_result(outcome_reason::accepted, 0);
  CHECK(!small.aborted());
  CHECK(!small.in_canary());
}

TEST_CASE("abort_on: only the listed kinds of failure count") {
  rollout_config c = config(0, 0.2, 10);
  c.abort_on = 1u << static_cast<unsigned>(outcome_reason::device_failed);
  rollout_guard g(c);
  for (int i = 0; i < 50; ++i) g.on_result(outcome_reason::transport_failed, 0);
  CHECK(!g.aborted());  // transport failures are not counted here
  for (int i = 0; i < 20; ++i) g.on_result(outcome_reason::device_failed, 0);
  CHECK(g.aborted());  // 20 of 70 = 28.6% > 20%
}

TEST_CASE("ramp: start, multiply after every N successes, stop at the configured rate") {
  rollout_config c;
  c.ramp.start_rps = 5;
  c.ramp.factor = 2;
  c.ramp.every_devices = 100;
  rollout_guard g(c, 30);
  CHECK(g.ramp_rate() == 5);
  for (int i = 0; i < 99; ++i) g.on_result(outcome_reason::accepted, 0);
  CHECK(g.ramp_rate() == 5);
  g.on_result(outcome_reason::accepted, 0);
  CHECK(g.ramp_rate() == 10);
  for (int i = 0; i < 50; ++i) g.on_result(outcome_reason::device_failed, 0);
  CHECK(g.ramp_rate() == 10);  // failures do not step the ramp
  for (int i = 0; i < 100; ++i) g.on_result(outcome_reason::accepted, 0);
  CHECK(g.ramp_rate() == 20);
  for (int i = 0; i < 1000; ++i) g.on_result(outcome_reason::accepted, 0);
  CHECK(g.ramp_rate() == 30);                                   // capped
  CHECK(rollout_guard(rollout_config{}, 30).ramp_rate() == 0);  // no ramp
}

TEST_CASE("a canary is judged by \"above the ratio\": a perfect canary passes a ratio of 0") {
  // abort_failure_ratio 0: the canary must not fail at all; with none failed
  // it passes.
  rollout_guard perfect(config(5, 0.0, 0));
  perfect.on_admitted(5);
  for (int i = 0; i < 5; ++i) perfect.on_result(outcome_reason::accepted, 0);
  CHECK(!perfect.aborted());
  CHECK(!perfect.in_canary());
  CHECK(perfect.admit_limit() > 1'000'000);
  // Exactly at the ratio is not above it: 1 of 4 failed against 0.25.
  rollout_guard edge(config(4, 0.25, 0));
  edge.on_admitted(4);
  edge.on_result(outcome_reason::device_failed, 0);
  for (int i = 0; i < 3; ++i) edge.on_result(outcome_reason::accepted, 0);
  CHECK(!edge.aborted());
  // One more failure than that aborts.
  rollout_guard over(config(4, 0.25, 0));
  over.on_admitted(4);
  over.on_result(outcome_reason::device_failed, 0);
  over.on_result(outcome_reason::device_failed, 0);
  over.on_result(outcome_reason::accepted, 0);
  over.on_result(outcome_reason::accepted, 0);
  CHECK(over.aborted());
  // A ratio of 0 with a single failed canary device aborts.
  rollout_guard strict(config(3, 0.0, 0));
  strict.on_admitted(3);
  strict.on_result(outcome_reason::accepted, 0);
  strict.on_result(outcome_reason::transport_failed, 0);
  strict.on_result(outcome_reason::accepted, 0);
  CHECK(strict.aborted());
}

TEST_CASE("a canary that waits for acks is judged on delivery, then the rest goes") {
  auto c = config(10, 0.2, 0);
  c.canary_wait_for_ack = true;
  c.abort_on = rollout_config::abort_on_delivery_failed | rollout_config::abort_on_no_ack;
  rollout_guard g(c);
  g.on_admitted(10);
  for (int i = 0; i < 10; ++i) g.on_result(outcome_reason::accepted, 0);
  CHECK(g.in_canary());  // every answer in, no ack yet
  CHECK(g.admit_limit() == 0);
  CHECK(g.holding_for(0).find("the canary's acknowledgements (10 to come)") != std::string::npos);
  for (int i = 0; i < 9; ++i) g.on_delivery(delivery_outcome::delivered, 0);
  CHECK(g.in_canary());
  g.on_delivery(delivery_outcome::no_ack, 0);  // 1 of 10: not above 0.2
  CHECK(!g.in_canary());
  CHECK(!g.aborted());
  CHECK(g.admit_limit() > 1000);

  rollout_guard h(c);
  h.on_admitted(10);
  for (int i = 0; i < 10; ++i) h.on_result(outcome_reason::accepted, 0);
  for (int i = 0; i < 7; ++i) h.on_delivery(delivery_outcome::delivery_failed, 0);
  CHECK(h.in_canary());  // judged as a whole, once all are in
  for (int i = 0; i < 3; ++i) h.on_delivery(delivery_outcome::delivered, 0);
  CHECK(h.aborted());
  CHECK(h.verdict().find("aborted by the canary: 7 of its 10 devices failed") != std::string::npos);
}

TEST_CASE("delivery failures count toward the abort ratio only when abort_on names them") {
  auto c = config(0, 0.1, 10);
  c.abort_on = 1u << static_cast<unsigned>(outcome_reason::device_failed);
  rollout_guard g(c);
  for (int i = 0; i < 20; ++i) g.on_result(outcome_reason::accepted, 0);
  for (int i = 0; i < 10; ++i) g.on_delivery(delivery_outcome::delivery_failed, 0);
  CHECK(!g.aborted());
  c.abort_on |= rollout_config::abort_on_delivery_failed;
  rollout_guard h(c);
  for (int i = 0; i < 20; ++i) h.on_result(outcome_reason::accepted, 0);
  h.on_delivery(delivery_outcome::no_ack, 0);
  h.on_delivery(delivery_outcome::delivery_failed, 0);
  CHECK(!h.aborted());  // 1 of 20 (no_ack not named)
  h.on_delivery(delivery_outcome::delivery_failed, 0);
  h.on_delivery(delivery_outcome::delivery_failed, 0);
  CHECK(h.aborted());  // 3 of 20 > 0.1
}
