// The dispatcher's rollout guard and time rules on the simulated clock
// (dispatch_sim): the canary, the abort threshold, the ramp, the time window
// and the gateway cap. Each test checks device by device that every input
// record has exactly one result.
#include "core/dispatch/dispatcher.hpp"
#include "core/input/device_hash.hpp"
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
    // The canary is the plan's first phase: a sample spread over the list.
    const auto canary_of = [](const dispatch_sim& s, std::size_t n) {
      std::set<std::string> keys;
      for (std::size_t i = 0; i < n; ++i) {
        const auto dk = fmt::format("d{}", i);
        pkdk_view v;
        v.product_key = "p1";
        v.device_key = dk;
        if (s.plan()->phase_of(v, device_hash("p1", dk)) == 0) keys.insert(dk);
      }
      return keys;
    };
    SUBCASE("good") {
      dispatch_sim s(
          sim_job(
              R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0},"rollout":{"canary_devices":120,"canary_wait_s":5,"abort_failure_ratio":0.2})"),
          sim_devices(1000));
      const auto summary = s.run();
      s.check_exactly_once(1000);
      CHECK(summary.state == job_state::completed);
      const auto canary = canary_of(s, 1000);
      CHECK(canary.size() >= 80);  // about 120: a share of the fleet by rank
      CHECK(canary.size() <= 160);
      CHECK(!canary.contains("d0"));  // not the first lines: d0 to d9 are not all in it
      CHECK(std::count_if(canary.begin(), canary.end(), [](const std::string& k) {
              return std::stoi(k.substr(1)) >= 500;
            }) >= 30);  // spread over the whole list
      // Its requests come first, alone; the rest after their answers and 5 s.
      std::int64_t canary_answered = 0;
      std::size_t sent = 0, i = 0;
      for (; sent < canary.size(); ++i) {
        for (const auto& k : s.requests().at(i).device_keys) {
          CHECK(canary.contains(k));
          ++sent;
        }
      }
      CHECK(sent == canary.size());
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
      const auto canary = canary_of(s, 1000);
      std::size_t sent = 0;
      for (const auto& [k, n] : s.sends()) {
        CHECK(canary.contains(k));
        sent += static_cast<std::size_t>(n);
      }
      CHECK(sent == canary.size());
      CHECK(count_reason(s, outcome_reason::aborted) == 1000 - canary.size());
      REQUIRE(!s.progress.empty());
      CHECK(s.progress.back().guard_stage == "aborted");
      CHECK(s.progress.back().verdict.starts_with("aborted by the canary"));
      CHECK(s.progress.back().by_reason[static_cast<std::size_t>(outcome_reason::aborted)] ==
            1000 - canary.size());
    }
  }

  TEST_CASE(
      "a sorted list of 20 models whose last (3% of the fleet) fails every device: a 2% canary "
      "aborts with a handful of that model commanded and nothing outside the canary") {
    // 19 models of 510 devices, then m19's 310, sorted by productKey as an export is.
    std::string csv = "productKey,deviceKey\n";
    std::vector<std::pair<std::string, std::string>> devices;
    for (int m = 0; m < 20; ++m) {
      const int n = m < 19 ? 510 : 310;
      for (int i = 0; i < n; ++i) {
        devices.emplace_back(fmt::format("m{:02}", m), fmt::format("m{:02}-d{}", m, i));
        csv += devices.back().first + "," + devices.back().second + "\n";
      }
    }
    emulator_config server;
    emulator_cohort_fault bad;
    bad.product_key = "m19";
    bad.failure_ratio = 1.0;
    server.cohort_faults.push_back(bad);
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":50},"connections":2,"rate":{"requests_per_second":0},"rollout":{"canary_devices":200,"abort_failure_ratio":0.05})"),
        csv, server);
    const auto summary = s.run();
    s.check_exactly_once(devices.size());
    CHECK(summary.state == job_state::aborted);
    std::set<std::string> canary;
    std::size_t bad_in_canary = 0;
    for (const auto& [pk, dk] : devices) {
      pkdk_view v;
      v.product_key = pk;
      v.device_key = dk;
      if (s.plan()->phase_of(v, device_hash(pk, dk)) != 0) continue;
      canary.insert(dk);
      bad_in_canary += pk == "m19";
    }
    CHECK(bad_in_canary >= 3);  // min_per_cohort: the small model is in the canary
    CHECK(bad_in_canary <= 15);
    std::size_t bad_sent = 0;
    for (const auto& [k, n] : s.sends()) {
      CHECK(canary.contains(k));  // nothing beyond the canary
      bad_sent += k.starts_with("m19");
    }
    CHECK(bad_sent == bad_in_canary);
    REQUIRE(!s.progress.empty());
    // The fleet-wide ratio of the canary is about 3%, under 5%: the cohort's rule aborts.
    CHECK(s.progress.back().verdict.starts_with("aborted by the canary: cohort productKey m19: "));
    // Without the cohort rule (a single cohort by gateway: none here) it would pass.
    dispatch_sim fleetwide(
        sim_job(
            R"("batch":{"max_devices":50},"connections":2,"rate":{"requests_per_second":0},"rollout":{"canary_devices":200,"abort_failure_ratio":0.05,"cohort_by":"gatewayProductKey"})"),
        csv, server);
    const auto passed = fleetwide.run();
    fleetwide.check_exactly_once(devices.size());
    CHECK(passed.state == job_state::completed);
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

TEST_SUITE("dispatcher") {
  TEST_CASE("pause held for five minutes: nothing sent while paused, then every device once") {
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":10},"connections":2,"rate":{"requests_per_second":20})"),
        sim_devices(1000));
    std::vector<act_result> acts;
    s.at.emplace(1'000'000, [&](dispatcher& d) {
      acts.push_back(d.on_operator(operator_act::pause, 1'000'000));
    });
    s.at.emplace(2'000'000, [&](dispatcher& d) {
      acts.push_back(d.on_operator(operator_act::pause, 2'000'000));
    });
    s.at.emplace(301'000'000, [&](dispatcher& d) {
      acts.push_back(d.on_operator(operator_act::resume, 301'000'000));
    });
    s.at.emplace(302'000'000, [&](dispatcher& d) {
      acts.push_back(d.on_operator(operator_act::resume, 302'000'000));
      acts.push_back(d.on_operator(operator_act::approve, 302'000'000));
    });
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.state == job_state::completed);
    REQUIRE(acts.size() == 5);
    CHECK(acts[0].applied);
    CHECK(acts[0].text.starts_with("paused: nothing more is sent; "));
    CHECK(!acts[1].applied);  // already paused
    CHECK(acts[2].applied);
    CHECK(acts[2].text == "continued after 300 s paused");
    CHECK(!acts[3].applied);  // not paused
    CHECK(!acts[4].applied);  // no approval gate
    // No request was written while paused (the ones in flight at the pause
    // were written before it).
    std::size_t during = 0;
    for (const auto& r : s.requests()) during += r.at_us > 1'000'000 && r.at_us < 301'000'000;
    CHECK(during == 0);
    CHECK(std::any_of(s.progress.begin(), s.progress.end(), [](const dispatch_progress& p) {
      return p.held && p.waiting_for.starts_with("a continue: paused by an operator");
    }));
    // A cancel while paused ends the run: the rest recorded skipped, once.
    dispatch_sim c(
        sim_job(R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":20})"),
        sim_devices(500));
    c.at.emplace(500'000, [](dispatcher& d) { d.on_operator(operator_act::pause, 500'000); });
    c.at.emplace(60'000'000, [](dispatcher& d) { d.cancel(); });
    const auto cancelled = c.run();
    c.check_exactly_once(500);
    CHECK(cancelled.state == job_state::cancelled);
  }
}
