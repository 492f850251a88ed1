// Phase gates and abort verdicts, fleet-wide and per cohort, with time
// passed in.
#include "core/dispatch/rollout_guard.hpp"

#include "core/input/device_hash.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace fleetcast;

namespace {
constexpr auto none = phase_plan::no_cohort;

rollout_config config(std::uint64_t canary, double ratio, std::uint64_t min, double wait = 0) {
  rollout_config c;
  c.canary_devices = canary;
  c.abort_failure_ratio = ratio;
  c.abort_min_devices = min;
  c.canary_wait_s = wait;
  return c;
}

void results(rollout_guard& g, int n, outcome_reason r, std::uint32_t cohort = none,
             std::int64_t now = 0) {
  static std::uint64_t index = 0;
  for (int i = 0; i < n; ++i) g.on_result(r, cohort, index++, now);
}

// A plan over `cohorts` cohorts named m0, m1, ... of `each` devices.
phase_plan plan_of(const rollout_config& c, int cohorts, int each) {
  phase_plan p(c);
  std::string error;
  for (int m = 0; m < cohorts; ++m) {
    const auto pk = "m" + std::to_string(m);
    for (int d = 0; d < each; ++d) {
      const auto dk = "d" + std::to_string(d);
      pkdk_view v;
      v.product_key = pk;
      v.device_key = dk;
      REQUIRE(p.count(v, device_hash(pk, dk), error));
    }
  }
  p.seal();
  return p;
}
}  // namespace

TEST_CASE("the defaults change nothing: no canary, never an abort") {
  rollout_guard g(rollout_config{});
  CHECK(g.admitting());
  CHECK(g.phases() == 1);
  CHECK(g.stage() == "running");
  results(g, 1000, outcome_reason::transport_failed);
  CHECK(!g.aborted());  // 100% failed is not above a ratio of 1.0
}

TEST_CASE("abort once at least abort_min_devices are done and the failed ratio exceeds the limit") {
  rollout_guard g(config(0, 0.2, 100));
  results(g, 50, outcome_reason::device_failed);
  CHECK(!g.aborted());  // 100% failed, but only 50 done
  results(g, 49, outcome_reason::accepted);
  CHECK(!g.aborted());  // 99 done
  results(g, 1, outcome_reason::accepted);
  CHECK(g.aborted());  // 100 done, 50% failed
  CHECK(g.verdict().find("50 of 100 devices failed") != std::string::npos);
  CHECK(!g.admitting());
  // Skips (aborted, cancelled) are not outcomes of the rollout.
  rollout_guard h(config(0, 0.2, 10));
  results(h, 100, outcome_reason::cancelled);
  CHECK(!h.aborted());  // 100 skipped: nothing judged yet
  results(h, 8, outcome_reason::accepted);
  results(h, 1, outcome_reason::batch_rejected);
  results(h, 1, outcome_reason::missing_in_answer);
  CHECK(!h.aborted());  // exactly 20%: not above
  results(h, 1, outcome_reason::transport_failed);
  CHECK(h.aborted());
}

TEST_CASE("a canary goes alone, then a good verdict opens the rest after the wait") {
  rollout_guard g(config(10, 0.2, 0, 2.0));
  CHECK(g.in_canary());
  CHECK(g.phases() == 2);
  CHECK(g.admitting());
  g.on_admitted(6);
  CHECK(g.holding_for(0).empty());  // the canary is still being sent
  g.on_admitted(4);
  g.on_phase_read(0);
  CHECK(!g.admitting());  // nothing more until the canary is judged
  results(g, 1, outcome_reason::device_failed, none, 1'000'000);
  results(g, 8, outcome_reason::accepted, none, 1'000'000);
  CHECK(!g.admitting());
  CHECK(g.holding_for(1'000'000) == "the canary's results (9 of 10 devices)");
  results(g, 1, outcome_reason::accepted, none, 1'000'000);  // the last: 10% failed
  CHECK(!g.aborted());
  CHECK(!g.admitting());  // waiting canary_wait_s
  CHECK(g.stage() == "canary passed");
  CHECK(g.holding_for(1'000'000) == "the canary's wait (2 s left)");
  CHECK(g.holding_for(2'500'000) == "the canary's wait (1 s left)");
  CHECK(g.next_change_us() == 3'000'000);
  g.tick(2'999'999);
  CHECK(!g.admitting());
  g.tick(3'000'000);
  CHECK(g.admitting());
  CHECK(g.phase() == 1);
  CHECK(!g.in_canary());
  CHECK(g.holding_for(3'000'000).empty());
  // The rest has no gate: reading its end changes nothing.
  g.on_phase_read(3'000'000);
  CHECK(g.admitting());
}

TEST_CASE("a bad canary aborts, judged as a whole, and an empty canary passes without waiting") {
  rollout_guard g(config(4, 0.2, 1000));
  g.on_admitted(4);
  g.on_phase_read(0);
  results(g, 1, outcome_reason::accepted);
  results(g, 1, outcome_reason::device_failed);
  results(g, 1, outcome_reason::accepted);
  CHECK(!g.aborted());  // judged only as a whole
  results(g, 1, outcome_reason::accepted);
  CHECK(g.aborted());  // 25% > 20%, whatever abort_min_devices says
  CHECK(g.verdict().find("aborted by the canary: 1 of its 4 devices failed") != std::string::npos);

  // A resume after the canary passed: none of its devices is sent again.
  rollout_guard resumed(config(100, 0.5, 0, 600));
  resumed.on_phase_read(5'000'000);
  CHECK(resumed.admitting());
  CHECK(resumed.phase() == 1);  // no wait: the canary sent nothing in this run
}

TEST_CASE("abort_on: only the listed kinds of failure count") {
  rollout_config c = config(0, 0.2, 10);
  c.abort_on = 1u << static_cast<unsigned>(outcome_reason::device_failed);
  rollout_guard g(c);
  results(g, 50, outcome_reason::transport_failed);
  CHECK(!g.aborted());  // transport failures are not counted here
  results(g, 20, outcome_reason::device_failed);
  CHECK(g.aborted());  // 20 of 70 = 28.6% > 20%
}

TEST_CASE("ramp: start, multiply after every N successes, stop at the configured rate") {
  rollout_config c;
  c.ramp.start_rps = 5;
  c.ramp.factor = 2;
  c.ramp.every_devices = 100;
  rollout_guard g(c, 30);
  CHECK(g.ramp_rate() == 5);
  results(g, 99, outcome_reason::accepted);
  CHECK(g.ramp_rate() == 5);
  results(g, 1, outcome_reason::accepted);
  CHECK(g.ramp_rate() == 10);
  results(g, 50, outcome_reason::device_failed);
  CHECK(g.ramp_rate() == 10);  // failures do not step the ramp
  results(g, 100, outcome_reason::accepted);
  CHECK(g.ramp_rate() == 20);
  results(g, 1000, outcome_reason::accepted);
  CHECK(g.ramp_rate() == 30);                                   // capped
  CHECK(rollout_guard(rollout_config{}, 30).ramp_rate() == 0);  // no ramp
}

TEST_CASE("a canary is judged by \"above the ratio\": a perfect canary passes a ratio of 0") {
  auto judged = [](double ratio, std::vector<outcome_reason> rs) {
    rollout_guard g(config(rs.size(), ratio, 0));
    g.on_admitted(rs.size());
    g.on_phase_read(0);
    for (auto r : rs) results(g, 1, r);
    return g.aborted();
  };
  using R = outcome_reason;
  CHECK(!judged(0.0, {R::accepted, R::accepted, R::accepted, R::accepted, R::accepted}));
  // Exactly at the ratio is not above it: 1 of 4 failed against 0.25.
  CHECK(!judged(0.25, {R::device_failed, R::accepted, R::accepted, R::accepted}));
  CHECK(judged(0.25, {R::device_failed, R::device_failed, R::accepted, R::accepted}));
  // A ratio of 0 with a single failed canary device aborts.
  CHECK(judged(0.0, {R::accepted, R::transport_failed, R::accepted}));
}

TEST_CASE("a canary that waits for acks is judged on delivery, then the rest goes") {
  auto c = config(10, 0.2, 0);
  c.canary_wait_for_ack = true;
  c.abort_on = rollout_config::abort_on_delivery_failed | rollout_config::abort_on_no_ack;
  rollout_guard g(c);
  g.on_admitted(10);
  g.on_phase_read(0);
  for (std::uint64_t i = 0; i < 10; ++i) g.on_result(outcome_reason::accepted, none, i, 0);
  CHECK(g.in_canary());  // every answer in, no ack yet
  CHECK(!g.admitting());
  CHECK(g.holding_for(0) == "the canary's acknowledgements (10 to come)");
  g.on_delivery(delivery_outcome::delivered, 99, 0);  // not one of the canary's: no change
  for (std::uint64_t i = 0; i < 9; ++i) g.on_delivery(delivery_outcome::delivered, i, 0);
  CHECK(g.in_canary());
  g.on_delivery(delivery_outcome::no_ack, 9, 0);  // 1 of 10: not above 0.2
  CHECK(!g.in_canary());
  CHECK(!g.aborted());
  CHECK(g.admitting());

  rollout_guard h(c);
  h.on_admitted(10);
  h.on_phase_read(0);
  for (std::uint64_t i = 0; i < 10; ++i) h.on_result(outcome_reason::accepted, none, i, 0);
  for (std::uint64_t i = 0; i < 7; ++i) h.on_delivery(delivery_outcome::delivery_failed, i, 0);
  CHECK(h.in_canary());  // judged as a whole, once all are in
  for (std::uint64_t i = 7; i < 10; ++i) h.on_delivery(delivery_outcome::delivered, i, 0);
  CHECK(h.aborted());
  CHECK(h.verdict().find("aborted by the canary: 7 of its 10 devices failed") != std::string::npos);
}

TEST_CASE("delivery failures count toward the abort ratio only when abort_on names them") {
  auto c = config(0, 0.1, 10);
  c.abort_on = 1u << static_cast<unsigned>(outcome_reason::device_failed);
  rollout_guard g(c);
  results(g, 20, outcome_reason::accepted);
  for (std::uint64_t i = 0; i < 10; ++i) g.on_delivery(delivery_outcome::delivery_failed, i, 0);
  CHECK(!g.aborted());
  c.abort_on |= rollout_config::abort_on_delivery_failed;
  rollout_guard h(c);
  results(h, 20, outcome_reason::accepted);
  h.on_delivery(delivery_outcome::no_ack, 0, 0);
  h.on_delivery(delivery_outcome::delivery_failed, 1, 0);
  CHECK(!h.aborted());  // 1 of 20 (no_ack not named)
  h.on_delivery(delivery_outcome::delivery_failed, 2, 0);
  h.on_delivery(delivery_outcome::delivery_failed, 3, 0);
  CHECK(h.aborted());  // 3 of 20 > 0.1
}

TEST_CASE("per cohort: one model failing every device aborts while the fleet's ratio is low") {
  auto c = config(0, 0.05, 20);
  const auto plan = plan_of(c, 20, 10);
  rollout_guard g(c, 0, &plan);
  // 19 models succeed: 380 outcomes; the last fails its first devices.
  for (std::uint32_t m = 0; m < 19; ++m) results(g, 20, outcome_reason::accepted, m);
  results(g, 19, outcome_reason::device_failed, 19);
  CHECK(!g.aborted());  // 19 failed of its 19: under abort_min_devices (20) for a cohort
  results(g, 1, outcome_reason::device_failed, 19);
  REQUIRE(g.aborted());  // the fleet: 20 of 400 = 5%, not above; the cohort: 100%
  CHECK(g.verdict() ==
        "aborted: cohort productKey m19: 20 of its 20 devices failed (100.0%), above "
        "abort_failure_ratio 0.05 (after at least 20)");
}

TEST_CASE(
    "phases: each gate judges its phase, fleet-wide and per cohort, and a good one opens the "
    "next") {
  rollout_config c;
  c.abort_failure_ratio = 0.5;  // the rest's rule, loose
  c.min_per_cohort = 2;
  phase_step canary, half;
  canary.share = 0.02;
  canary.gate.max_failure_ratio = 0.1;
  half.share = 0.5;
  half.gate.max_failure_ratio = 0.2;
  half.gate.wait_s = 60;
  c.phases = {canary, half};
  const auto plan = plan_of(c, 3, 100);
  rollout_guard g(c, 0, &plan);
  REQUIRE(g.phases() == 3);
  CHECK(g.stage() == "canary");
  g.on_admitted(9);
  g.on_phase_read(0);
  for (std::uint32_t m = 0; m < 3; ++m) results(g, 3, outcome_reason::accepted, m);
  CHECK(g.phase() == 1);  // no wait after the canary
  CHECK(g.stage() == "phase 1 of 2");
  g.on_admitted(10);
  g.on_phase_read(1'000'000);
  results(g, 8, outcome_reason::accepted, 0, 1'000'000);
  results(g, 1, outcome_reason::accepted, 1, 1'000'000);
  CHECK(g.holding_for(1'000'000) == "phase 1's results (9 of 10 devices)");
  results(g, 1, outcome_reason::device_failed, 1, 1'000'000);  // 10%; cohort m1: 1 of 2 = 50%
  REQUIRE(g.aborted());
  CHECK(g.verdict() ==
        "aborted by phase 1: cohort productKey m1: 1 of its 2 devices failed (50.0%), above "
        "max_failure_ratio 0.2");

  rollout_guard ok(c, 0, &plan);
  ok.on_admitted(1);
  ok.on_phase_read(0);
  results(ok, 1, outcome_reason::accepted, 0);
  ok.on_admitted(4);
  ok.on_phase_read(0);
  results(ok, 4, outcome_reason::accepted, 2, 5'000'000);
  CHECK(!ok.admitting());
  CHECK(ok.holding_for(5'000'000) == "phase 1's wait (60 s left)");
  ok.tick(65'000'000);
  CHECK(ok.phase() == 2);
  CHECK(ok.stage() == "phases passed");
  CHECK(ok.admitting());
}

TEST_CASE("an approval gate holds the next phase until an operator approves, then its wait") {
  rollout_config c;
  phase_step canary;
  canary.share = 0.1;
  canary.gate.wait_for_approval = true;
  canary.gate.wait_s = 30;
  c.phases = {canary};
  rollout_guard g(c);
  CHECK(!g.approve(0).applied);  // nothing waits yet: said, not kept for later
  g.on_admitted(2);
  g.on_phase_read(0);
  const auto early = g.approve(0);
  CHECK(!early.applied);
  CHECK(early.text ==
        "nothing waits for an approval (the rollout's stage: canary, its gate not yet judged)");
  results(g, 2, outcome_reason::accepted, none, 1'000'000);
  CHECK(g.awaiting_approval());
  CHECK(!g.admitting());
  CHECK(g.holding_for(1'000'000) ==
        "an operator's approval of the canary (its gate passed: fleetcast approve)");
  CHECK(g.next_change_us() == std::numeric_limits<std::int64_t>::max());  // no timer ends it
  g.tick(3'600'000'000);
  CHECK(g.awaiting_approval());  // an hour later, still waiting
  const auto ok = g.approve(3'600'000'000);
  CHECK(ok.applied);
  CHECK(ok.text == "the canary approved: the next phase starts after 30 s");
  CHECK(!g.admitting());
  g.tick(3'630'000'000);
  CHECK(g.admitting());
  CHECK(g.phase() == 1);
  CHECK(!g.approve(3'630'000'000).applied);  // once
}

TEST_CASE("on_cohort_failure exclude: the failing cohort is left out, the rest judged without it") {
  auto c = config(0, 0.05, 20);
  c.exclude_failing_cohorts = true;
  const auto plan = plan_of(c, 20, 10);
  rollout_guard g(c, 0, &plan);
  for (std::uint32_t m = 0; m < 19; ++m) results(g, 20, outcome_reason::accepted, m);
  results(g, 20, outcome_reason::device_failed, 19);
  CHECK(!g.aborted());
  CHECK(g.excluded(19));
  CHECK(!g.excluded(3));
  REQUIRE(g.exclusions().size() == 1);
  CHECK(g.exclusion_of(19) ==
        "excluded: cohort productKey m19: 20 of its 20 devices failed (100.0%), above "
        "abort_failure_ratio 0.05 (after at least 20)");
  // Its requests in flight at the exclusion finish and fail: not the fleet's.
  results(g, 50, outcome_reason::device_failed, 19);
  CHECK(!g.aborted());
  // Another cohort above the ratio is excluded too (2 of its 22).
  results(g, 2, outcome_reason::device_failed, 4);
  CHECK(g.excluded(4));
  CHECK(!g.aborted());
  // The fleet's rule still stands over what no cohort's rule judges (here
  // outcomes of no cohort): at 19 failed of 379 (m19 and m4 not counted).
  results(g, 30, outcome_reason::device_failed, none);
  REQUIRE(g.aborted());
  CHECK(g.verdict().starts_with("aborted: 19 of 379 devices failed"));
  CHECK(g.verdict().ends_with("; the excluded cohorts not counted)"));

  // At a gate: every cohort above the limit excluded, the phase passes on the rest.
  rollout_config p;
  p.canary_devices = 40;
  p.abort_failure_ratio = 0.05;
  p.exclude_failing_cohorts = true;
  const auto plan2 = plan_of(p, 4, 100);
  rollout_guard h(p, 0, &plan2);
  h.on_admitted(40);
  h.on_phase_read(0);
  results(h, 10, outcome_reason::accepted, 0);
  results(h, 10, outcome_reason::accepted, 1);
  results(h, 10, outcome_reason::device_failed, 2);
  results(h, 5, outcome_reason::device_failed, 3);
  results(h, 5, outcome_reason::accepted, 3);
  CHECK(!h.aborted());
  CHECK(h.excluded(2));
  CHECK(h.excluded(3));
  CHECK(h.exclusions().front().starts_with(
      "excluded by the canary: cohort productKey m2: 10 of its 10"));
  CHECK(h.phase() == 1);  // the rest goes, without m2 and m3
}
