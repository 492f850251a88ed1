// The dispatcher's rollout guard and time rules on the simulated clock
// (dispatch_sim): the canary, the abort threshold, the ramp, the time window
// and the gateway cap. Each test checks device by device that every input
// record has exactly one result.
#include "core/dispatch/dispatcher.hpp"
#include "dispatch_sim.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <set>

using namespace fleetcast;
using namespace fleetcast::testing;

TEST_SUITE("dispatcher") {
  TEST_CASE(
      "canary: nothing outside it is sent before its verdict and wait, a bad canary aborts "
      "with only the canary commanded") {
    SUBCASE("good") {
      dispatch_sim s(
          sim_job(
              R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0},"rollout":{"canary_devices":120,"canary_wait_s":5,"abort_failure_ratio":0.2})"),
          sim_devices(1000));
      const auto summary = s.run();
      s.check_exactly_once(1000);
      CHECK(summary.state == job_state::completed);
      // The canary: the first 120 devices in 3 requests (50, 50, 20).
      std::int64_t canary_answered = 0;
      std::size_t canary_devices = 0, i = 0;
      for (; canary_devices < 120; ++i) canary_devices += s.requests().at(i).device_keys.size();
      CHECK(canary_devices == 120);
      for (std::size_t k = 0; k < i; ++k)
        canary_answered = std::max(canary_answered, s.requests()[k].at_us + s.answer_us);
      CHECK(s.requests().at(i).at_us >= canary_answered + 5'000'000);
      REQUIRE(!s.progress.empty());
      // The progress tells the stage: held back while the canary waits.
      CHECK(std::any_of(s.progress.begin(), s.progress.end(), [](const dispatch_progress& p) {
        return p.held && p.guard_stage == "canary passed";
      }));
      CHECK(s.progress.back().guard_stage == "canary passed");
      CHECK(s.progress.back().verdict.empty());
    }
    SUBCASE("bad") {
      emulator_config server;
      server.device_failure_ratio = 1.0;
      dispatch_sim s(
          sim_job(
              R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0},"rollout":{"canary_devices":120,"abort_failure_ratio":0.2})"),
          sim_devices(1000), server);
      const auto summary = s.run();
      s.check_exactly_once(1000);
      CHECK(summary.state == job_state::aborted);
      std::size_t sent = 0;
      for (const auto& [k, n] : s.sends()) sent += static_cast<std::size_t>(n);
      CHECK(sent == 120);
      CHECK(count_reason(s, outcome_reason::aborted) == 880);
      REQUIRE(!s.progress.empty());
      CHECK(s.progress.back().guard_stage == "aborted");
      CHECK(s.progress.back().verdict.starts_with("aborted by the canary"));
      CHECK(s.progress.back().by_reason[static_cast<std::size_t>(outcome_reason::aborted)] == 880);
    }
  }

  TEST_CASE("abort: failures above the threshold stop the rollout, nothing is sent after it") {
    emulator_config server;
    server.device_failure_ratio = 0.5;
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0},"rollout":{"abort_failure_ratio":0.3,"abort_min_devices":50})"),
        sim_devices(1000), server);
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.state == job_state::aborted);
    CHECK(s.requests().size() <= 6);  // the verdict at 50 devices
    CHECK(count_reason(s, outcome_reason::aborted) >= 940);
  }

  TEST_CASE("ramp: the request rate starts low and doubles with successes") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":4,"rate":{"requests_per_second":80,"burst":1},"rollout":{"ramp":{"start_rps":10,"factor":2,"every_devices":50}})"),
        sim_devices(3000));
    s.run();
    s.check_exactly_once(3000);
    const auto& r = s.requests();
    // The first step: 10 requests/s until 50 devices (5 requests) succeeded.
    REQUIRE(r.size() > 10);
    for (std::size_t i = 1; i < 5; ++i) CHECK(r[i].at_us - r[i - 1].at_us >= 99'000);
    // Later steps: faster, never above the configured rate (a step may carry
    // one request reserved at the rate before it).
    CHECK(r[30].at_us - r[29].at_us < 50'000);
    CHECK(peak_in_window(s, 1'000'000) <= 82);
    CHECK(peak_in_window(s, 1'000'000) >= 60);  // the ramp reached the configured rate
  }

  TEST_CASE("time window: nothing before not_before, not_after stops as a cancel does") {
    SUBCASE("not_before") {
      dispatch_sim s(
          sim_job(
              R"("batch":{"max_devices":10},"rate":{"requests_per_second":0},"rollout":{"not_before":"2027-01-15T08:00:10Z"})"),
          sim_devices(100));
      s.run();
      s.check_exactly_once(100);
      CHECK(s.requests().front().at_us >= 10'000'000);
      bool said = false;
      for (const auto& p : s.progress)
        if (p.waiting_for.starts_with("the time window (opens in")) said = true;
      CHECK(said);
    }
    SUBCASE("not_after") {
      dispatch_sim s(
          sim_job(
              R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":10,"burst":1},"rollout":{"not_after":"2027-01-15T08:00:03Z"})"),
          sim_devices(1000));
      const auto summary = s.run();
      s.check_exactly_once(1000);
      CHECK(summary.state == job_state::cancelled);
      for (const auto& r : s.requests()) CHECK(r.at_us < 3'000'000);
      CHECK(s.requests().size() >= 25);
      CHECK(count_reason(s, outcome_reason::cancelled) >= 600);
      CHECK(s.machine().failure().find("not_after") != std::string::npos);
    }
  }

  TEST_CASE("gateway cap: never more in flight behind one gateway than max_per_gateway") {
    std::string csv = "productKey,deviceKey,gatewayProductKey,gatewayDeviceKey\n";
    for (int i = 0; i < 300; ++i) csv += fmt::format("p1,s{},gw,g{}\n", i, i % 3);
    for (int i = 0; i < 100; ++i) csv += fmt::format("p1,d{},,\n", i);
    for (std::uint64_t cap : {0u, 20u}) {
      CAPTURE(cap);
      dispatch_sim s(
          sim_job(fmt::format(
              R"("batch":{{"max_devices":50}},"connections":4,"pipeline_depth":2,"rate":{{"requests_per_second":0}},"rollout":{{"max_per_gateway":{}}})",
              cap)),
          csv);
      s.answer_us = 50'000;
      s.run();
      s.check_exactly_once(400);
      const auto peak = s.server_state().peak_in_flight_per_gateway();
      if (cap == 0) {
        CHECK(peak > 20);
      } else {
        CHECK(peak <= 20);
        CHECK(peak > 0);
      }
    }
  }
}  // TEST_SUITE
