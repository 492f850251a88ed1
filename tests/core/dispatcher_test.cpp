// The dispatcher's rules, driven on a simulated clock and network
// (dispatch_sim): no socket, no sleep. Each test checks device by device
// that every input record has exactly one result.
#include "core/dispatch/dispatcher.hpp"
#include "dispatch_sim.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

using namespace fleetcast;
using namespace fleetcast::testing;

TEST_SUITE("dispatcher") {
  TEST_CASE("a clean run: every device once, batches at the limit, the summary adds up") {
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":100},"connections":4,"rate":{"requests_per_second":0})"),
        sim_devices(1000));
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.state == job_state::completed);
    CHECK(summary.requests == 10);
    CHECK(s.requests().size() == 10);
    CHECK(summary.count_of(device_status::succeeded) == 1000);
    CHECK(summary.batch_size == 100);
    for (const auto& [key, n] : s.sends()) CHECK_MESSAGE(n == 1, key);
    CHECK(s.machine().in_flight() == 0);
    // Four connections share the work, each connected once.
    std::set<unsigned> lanes;
    for (const auto& r : s.requests()) lanes.insert(r.lane);
    CHECK(lanes.size() == 4);
    CHECK(s.connects == 4);
  }

  TEST_CASE(
      "start-up: nothing is sent before the first connection, an endpoint that is not there "
      "fails the job after retry.max_attempts tries, no device sent") {
    dispatch_sim s(sim_job(R"("retry":{"max_attempts":3},"connections":2)"), sim_devices(50));
    s.connect_ok = [](unsigned, std::uint64_t) { return false; };
    const auto summary = s.run();
    s.check_exactly_once(50);
    CHECK(summary.state == job_state::failed);
    CHECK(s.connects == 3);  // lane 0 alone, three tries
    CHECK(s.requests().empty());
    CHECK(count_reason(s, outcome_reason::job_failed) == 50);
    CHECK(s.machine().failure().find("(3 tries; nothing was sent)") != std::string::npos);
    // The tries back off: the last one is not at once.
    CHECK(s.now_us() > 3 * s.connect_us);
  }

  TEST_CASE(
      "pipelining: at most pipeline_depth requests written per connection, a reset behind "
      "a window settles every request in it, nothing lost or doubled") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":2,"pipeline_depth":4,"rate":{"requests_per_second":0})"),
        sim_devices(400));
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      a.delay_us = 10'000;
      if (r.nth == 7) {
        a.reset = true;  // the connection dies: request 7 and those written behind it
        return a;
      }
      a.body = sim_success_body(r);
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(400);
    CHECK(s.peak_window == 4);
    CHECK(summary.state == job_state::completed);
    CHECK(summary.count_of(device_status::succeeded) == 400);
    CHECK(s.machine().in_flight() == 0);
    // Request 7's devices went again, uncertain; so did the ones written
    // behind it on that connection (no answer: unknown outcome).
    const auto& seventh = s.requests().at(6);
    for (const auto& k : seventh.device_keys) {
      const auto* r = s.result_of(k);
      REQUIRE(r);
      CHECK(r->uncertain);
      CHECK(r->attempts == 2);
    }
    CHECK(count_events(s, "attempt no_answer") >= 1);
    CHECK(s.connects >= 3);  // the dead connection was replaced
  }

  TEST_CASE(
      "Connection: close behind a window: the unread requests are sent again, not counted as "
      "tries, not uncertain") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"pipeline_depth":3,"rate":{"requests_per_second":0})"),
        sim_devices(100));
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      a.body = sim_success_body(r);
      a.close = r.nth == 2;
      return a;
    };
    s.run();
    s.check_exactly_once(100);
    for (const auto& r : s.results()) {
      CHECK(r.reason == outcome_reason::accepted);
      CHECK(!r.uncertain);
    }
    // Requests 3 and 4 were written behind the closing answer: their devices
    // went twice, but a request the server never read is not an attempt.
    CHECK(s.requests().size() == 12);
    const auto* third = s.result_of(s.requests().at(2).device_keys.front());
    REQUIRE(third);
    CHECK(third->attempts == 1);
    CHECK(s.sends().at(s.requests().at(2).device_keys.front()) == 2);
  }

  TEST_CASE("rate: no second holds more requests than requests_per_second plus the burst") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":4,"rate":{"requests_per_second":10,"burst":1})"),
        sim_devices(600));
    const auto summary = s.run();
    s.check_exactly_once(600);
    CHECK(summary.requests == 60);
    CHECK(peak_in_window(s, 1'000'000) <= 11);
    // 60 requests at 10/s: about 6 s of simulated time, not less.
    CHECK(s.requests().back().at_us >= 5'800'000);
    CHECK(s.requests().back().at_us <= 6'500'000);
    const auto rate_wait = s.progress.back().rate_wait_s;
    CHECK(rate_wait > 1.0);
  }

  TEST_CASE("rate: devices_per_second holds across batches") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":50},"connections":2,"rate":{"requests_per_second":0,"devices_per_second":100,"burst":1})"),
        sim_devices(1000));
    s.run();
    s.check_exactly_once(1000);
    // 1000 devices at 100/s, a bucket of one batch: about 9.5 s.
    CHECK(s.requests().back().at_us >= 9'000'000);
    std::size_t first = 0, devices = 0, peak = 0;
    const auto& r = s.requests();
    for (std::size_t i = 0; i < r.size(); ++i) {
      devices += r[i].device_keys.size();
      while (r[i].at_us - r[first].at_us >= 1'000'000) devices -= r[first++].device_keys.size();
      peak = std::max(peak, devices);
    }
    CHECK(peak <= 150);  // the rate plus one batch of burst
  }

  TEST_CASE(
      "retry and backoff: 502 twice, then an answer, uncertain, three attempts, delays "
      "within the jittered bounds") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0},"retry":{"max_attempts":5,"base_delay_ms":100,"max_delay_ms":1000})"),
        sim_devices(10));
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      if (r.nth <= 2) {
        a.status = 502;
        a.body = "bad gateway";
      } else {
        a.body = sim_success_body(r);
      }
      return a;
    };
    s.run();
    s.check_exactly_once(10);
    REQUIRE(s.requests().size() == 3);
    for (const auto& r : s.results()) {
      CHECK(r.reason == outcome_reason::accepted);
      CHECK(r.uncertain);  // a 502 may have been executed
      CHECK(r.attempts == 3);
    }
    // Full jitter: the delay before try n is at most base * 2^(n-1).
    const auto gap1 = s.requests()[1].at_us - s.requests()[0].at_us;
    const auto gap2 = s.requests()[2].at_us - s.requests()[1].at_us;
    CHECK(gap1 <= 2'000 + 200'000);
    CHECK(gap2 <= 2'000 + 400'000);
  }

  TEST_CASE("retry: max_attempts, then the devices fail transport_failed, uncertain") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":5},"connections":1,"rate":{"requests_per_second":0},"retry":{"max_attempts":3,"base_delay_ms":10})"),
        sim_devices(5));
    s.script = [](const sim_request&) -> std::optional<sim_answer> {
      sim_answer a;
      a.status = 504;
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(5);
    CHECK(s.requests().size() == 3);
    CHECK(summary.state == job_state::completed);
    for (const auto& r : s.results()) {
      CHECK(r.reason == outcome_reason::transport_failed);
      CHECK(r.uncertain);
      CHECK(r.msg.find("gave up after 3 tries") != std::string::npos);
    }
  }

  TEST_CASE(
      "the retry budget: against a server that always fails, retries stay within 20% of "
      "requests plus 10") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":1},"connections":4,"rate":{"requests_per_second":0},"retry":{"max_attempts":10,"base_delay_ms":1})"),
        sim_devices(200));
    s.script = [](const sim_request&) -> std::optional<sim_answer> {
      sim_answer a;
      a.status = 502;
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(200);
    const auto retries = s.requests().size() - 200;
    CHECK(retries <= static_cast<std::size_t>(0.2 * static_cast<double>(s.requests().size())) + 10);
    CHECK(count_reason(s, outcome_reason::transport_failed) == 200);
    std::size_t exhausted = 0;
    for (const auto& r : s.results())
      if (r.msg.find("retry budget exhausted") != std::string::npos) ++exhausted;
    CHECK(exhausted > 100);
    CHECK(summary.requests == s.requests().size());
    // The progress says so too (the daemon's fleetcast_retry_budget_refusals_total).
    REQUIRE(!s.progress.empty());
    const auto& last = s.progress.back();
    CHECK(last.budget_refusals > 100);
    CHECK(last.budget_refusals <= exhausted);
    CHECK(last.by_reason[static_cast<std::size_t>(outcome_reason::transport_failed)] == 200);
  }

  TEST_CASE("Retry-After: a 429's wait is honoured, capped by retry.max_retry_after_s, and said") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0},"retry":{"max_retry_after_s":20})"),
        sim_devices(10));
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      if (r.nth == 1) {
        a.status = 429;
        a.retry_after = "3600";
      } else {
        a.body = sim_success_body(r);
      }
      return a;
    };
    s.run();
    s.check_exactly_once(10);
    REQUIRE(s.requests().size() == 2);
    const auto gap = s.requests()[1].at_us - s.requests()[0].at_us;
    CHECK(gap >= 20'000'000);
    CHECK(gap <= 21'000'000);
    bool said = false;
    for (const auto& p : s.progress)
      if (p.waiting_for.find("asked to wait 3600 s (Retry-After); waiting 20 s") !=
          std::string::npos)
        said = true;
    CHECK(said);
    CHECK(count_events(s, "attempt throttled") == 1);
    for (const auto& r : s.results()) CHECK(!r.uncertain);  // a 429 was not executed
  }

  TEST_CASE("AIMD: throttling halves the rate, quiet seconds bring it back") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":1},"connections":4,"rate":{"requests_per_second":40,"burst":1})"),
        sim_devices(400));
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      if (r.nth == 20) {
        a.status = 503;
      } else {
        a.body = sim_success_body(r);
      }
      return a;
    };
    s.run();
    s.check_exactly_once(400);
    // The second after the 503 carries about half the rate.
    const auto& r = s.requests();
    const auto t = r.at(19).at_us;
    std::size_t after = 0;
    for (const auto& x : r)
      if (x.at_us > t + 10'000 && x.at_us <= t + 1'010'000) ++after;
    CHECK(after <= 22);
    CHECK(after >= 15);
    // By the end it is back near 40/s.
    std::size_t last = 0;
    for (const auto& x : r)
      if (x.at_us > r.back().at_us - 1'000'000) ++last;
    CHECK(last >= 30);
  }

  TEST_CASE("5312: batches split and the size settles on the server's limit") {
    emulator_config server;
    server.max_devices = 30;
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":100},"connections":2,"rate":{"requests_per_second":0})"),
        sim_devices(1000), server);
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.count_of(device_status::succeeded) == 1000);
    CHECK(summary.batch_size == 30);
    for (const auto& r : s.results()) CHECK(!r.uncertain);  // a 5312 executes nothing
    // Few refusals: the search halves (about log2(100) = 7 probes), each
    // refused at most once per connection with a batch in flight; stepping
    // down one size at a time would take 70.
    CHECK(count_events(s, "attempt split_too_long") <= 14);
    for (const auto& [key, n] : s.sends()) CHECK(n <= 3);
  }

  TEST_CASE("5041: the devices the user may not command are isolated, the others get the command") {
    emulator_config server;
    server.products = {"p1"};
    std::string csv = "productKey,deviceKey\n";
    for (int i = 0; i < 64; ++i) csv += fmt::format("{},d{}\n", i % 16 == 5 ? "p2" : "p1", i);
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":16},"connections":2,"rate":{"requests_per_second":0})"),
        csv, server);
    s.run();
    s.check_exactly_once(64);
    for (const auto& r : s.results()) {
      const bool refused = (r.index % 16) == 5;
      CHECK_MESSAGE((r.reason == outcome_reason::accepted) == !refused, r.device_key);
      if (refused) CHECK(r.code == 5041);
    }
    CHECK(count_events(s, "attempt split_permission") >= 4);
  }

  TEST_CASE(
      "token refresh: a 5032 fetches a fresh token while the other connections go on, "
      "the refused batch goes again with it") {
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":10},"connections":3,"rate":{"requests_per_second":0})"),
        sim_devices(300));
    s.token_fetch_us = 500'000;
    s.fetch_token = [](std::uint64_t) { return std::optional<std::string>("t2"); };
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      a.body = r.token == "t1" && r.nth >= 5 ? sim_code_body(5032, "token expired")
                                             : sim_success_body(r);
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(300);
    CHECK(summary.count_of(device_status::succeeded) == 300);
    CHECK(s.token_fetches == 1);  // one fetch for every refusal of the same token
    for (const auto& r : s.results()) CHECK(!r.uncertain);
    std::size_t t2 = 0;
    for (const auto& r : s.requests()) {
      if (r.at_us >= s.token_outcomes.at(0).first) CHECK(r.token == "t2");
      if (r.token == "t2") ++t2;
    }
    CHECK(t2 > 0);
    bool said = false;
    for (const auto& p : s.progress)
      if (p.waiting_for == "a fresh token") said = true;  // a token file: no command to name
    CHECK(said);
  }

  TEST_CASE("token refresh: the same token again fails the job, the rest is skipped, never lost") {
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":10},"connections":2,"rate":{"requests_per_second":0})"),
        sim_devices(200));
    s.fetch_token = [](std::uint64_t) { return std::optional<std::string>("t1"); };
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      a.body = r.nth >= 3 ? sim_code_body(5032, "token expired") : sim_success_body(r);
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(200);
    CHECK(summary.state == job_state::failed);
    CHECK(s.machine().failure().find("no fresh token is available") != std::string::npos);
    CHECK(count_reason(s, outcome_reason::accepted) == 20);
    CHECK(count_reason(s, outcome_reason::job_failed) == 180);
  }

  TEST_CASE(
      "token: a first token fetched before anything is sent, a failed first fetch is a "
      "start-up error with nothing recorded") {
    SUBCASE("fetched") {
      dispatch_sim s(sim_job(R"("batch":{"max_devices":10},"rate":{"requests_per_second":0})"),
                     sim_devices(50));
      s.first_token = "";
      s.token_fetch_us = 2'000'000;
      s.fetch_token = [](std::uint64_t) { return std::optional<std::string>("t9"); };
      s.run();
      s.check_exactly_once(50);
      REQUIRE(!s.requests().empty());
      CHECK(s.requests().front().at_us >= 2'000'000);
      for (const auto& r : s.requests()) CHECK(r.token == "t9");
    }
    SUBCASE("refused") {
      dispatch_sim s(sim_job(R"("batch":{"max_devices":10})"), sim_devices(50));
      s.first_token = "";
      s.fetch_token = [](std::uint64_t) { return std::optional<std::string>(); };
      s.run();
      CHECK(!s.machine().startup_error().empty());
      CHECK(s.requests().empty());
      CHECK(s.connects == 0);
    }
  }

  TEST_CASE("a rotated token is used from the next request on") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":10,"burst":1})"),
        sim_devices(100));
    s.at.emplace(500'000, [](dispatcher& d) { d.on_token_rotated("t5"); });
    s.run();
    s.check_exactly_once(100);
    for (const auto& r : s.requests()) CHECK(r.token == (r.at_us < 500'000 ? "t1" : "t5"));
  }

  TEST_CASE("drain: a cancel lets requests in flight finish and skips the rest, once") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":2,"pipeline_depth":2,"rate":{"requests_per_second":20,"burst":1})"),
        sim_devices(1000));
    s.answer_us = 300'000;
    s.at.emplace(2'000'000, [](dispatcher& d) { d.cancel(); });
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.state == job_state::cancelled);
    for (const auto& r : s.requests()) CHECK(r.at_us <= 2'000'000);
    // Every request written was answered and accounted.
    CHECK(count_reason(s, outcome_reason::accepted) == 10 * s.requests().size());
    CHECK(count_reason(s, outcome_reason::cancelled) == 1000 - 10 * s.requests().size());
    for (const auto& r : s.results())
      if (r.reason == outcome_reason::cancelled) CHECK(!r.uncertain);
  }

  TEST_CASE(
      "drain: a hard cancel (a cut, or a second cancel) cuts the requests in flight, their "
      "devices are uncertain") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":2,"pipeline_depth":2,"rate":{"requests_per_second":0})"),
        sim_devices(1000));
    s.answer_us = 10'000'000;  // nothing is answered before the cut
    SUBCASE("a cut") {
      s.at.emplace(1'000'000, [](dispatcher& d) { d.cancel(dispatcher::cancel_kind::cut); });
    }
    SUBCASE("a second cancel") {
      s.at.emplace(900'000, [](dispatcher& d) { d.cancel(); });
      s.at.emplace(1'000'000, [](dispatcher& d) { d.cancel(); });
    }
    const auto summary = s.run();
    s.check_exactly_once(1000);
    CHECK(summary.state == job_state::cancelled);
    CHECK(s.now_us() < 2'000'000);      // not waiting out the answers
    REQUIRE(s.requests().size() == 4);  // two connections, two each
    for (const auto& req : s.requests()) {
      for (const auto& k : req.device_keys) {
        const auto* r = s.result_of(k);
        REQUIRE(r);
        CHECK(r->uncertain);
        CHECK(r->reason == outcome_reason::cancelled);
      }
    }
  }

  TEST_CASE(
      "unreachable mid-run: sending pauses, reconnecting with backoff, after unreachable_s "
      "the job fails with nothing lost") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0},"timeouts":{"unreachable_s":30})"),
        sim_devices(200));
    s.connect_ok = [](unsigned, std::uint64_t attempt) { return attempt == 1; };
    s.script = [](const sim_request& r) -> std::optional<sim_answer> {
      sim_answer a;
      a.body = sim_success_body(r);
      a.close = r.nth == 3;
      return a;
    };
    const auto summary = s.run();
    s.check_exactly_once(200);
    CHECK(summary.state == job_state::failed);
    CHECK(s.requests().size() == 3);
    CHECK(count_reason(s, outcome_reason::accepted) == 30);
    CHECK(count_reason(s, outcome_reason::job_failed) == 170);
    CHECK(s.now_us() >= 30'000'000);
    CHECK(s.now_us() < 70'000'000);
    CHECK(s.machine().failure().find("timeouts.unreachable_s") != std::string::npos);
    bool said = false;
    for (const auto& p : s.progress)
      if (p.waiting_for.starts_with("no connection for")) said = true;
    CHECK(said);
  }

  TEST_CASE("a connection whose driver fails stops the rollout: failed, every device once") {
    dispatch_sim s(
        sim_job(
            R"("batch":{"max_devices":10},"connections":2,"pipeline_depth":2,"rate":{"requests_per_second":0})"),
        sim_devices(500));
    int batches = 0;
    s.hooks.before_send = [&batches](const batch&) -> std::string {
      if (++batches == 6) throw std::runtime_error("out of memory (simulated)");
      return {};
    };
    s.answer_us = 50'000;
    const auto summary = s.run();
    s.check_exactly_once(500);
    CHECK(summary.state == job_state::failed);
    CHECK(s.machine().failure().find("a connection failed: out of memory (simulated)") !=
          std::string::npos);
    CHECK(s.machine().in_flight() == 0);
  }

  TEST_CASE("a send journal that refuses a batch: it is not sent, the job fails, resumable") {
    dispatch_sim s(
        sim_job(R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0})"),
        sim_devices(100));
    int batches = 0;
    s.hooks.before_send = [&batches](const batch&) -> std::string {
      return ++batches == 4 ? "No space left on device" : "";
    };
    const auto summary = s.run();
    s.check_exactly_once(100);
    CHECK(summary.state == job_state::failed);
    CHECK(s.requests().size() == 3);
    CHECK(s.machine().failure().find("No space left on device") != std::string::npos);
    CHECK(count_reason(s, outcome_reason::job_failed) == 70);
  }

  TEST_CASE("resume: done records are not sent or reported, maybe-sent ones are uncertain") {
    dispatch_sim s(sim_job(R"("batch":{"max_devices":10},"rate":{"requests_per_second":0})"),
                   sim_devices(100));
    s.hooks.already_done = [](std::uint64_t i) { return i < 40; };
    s.hooks.maybe_sent = [](std::uint64_t i) { return i >= 40 && i < 50; };
    s.run();
    CHECK(s.results().size() == 60);
    for (const auto& r : s.results()) {
      CHECK(r.index >= 40);
      CHECK(r.uncertain == (r.index < 50));
    }
    CHECK(s.sends().size() == 60);
  }

  TEST_CASE("a token the server echoes is redacted from every result") {
    emulator_config server;
    server.faults.echo_token = 1;
    dispatch_sim s(sim_job(R"("batch":{"max_devices":10},"rate":{"requests_per_second":0})"),
                   sim_devices(30), server);
    s.first_token = "Bearer sekrit-token-value";
    s.run();
    s.check_exactly_once(30);
    for (const auto& r : s.results()) {
      CHECK(r.ticket.find("sekrit") == std::string::npos);
      CHECK(r.msg.find("sekrit") == std::string::npos);
    }
  }

  TEST_CASE("parse_retry_after: delta-seconds only") {
    CHECK(parse_retry_after("120") == 120);
    CHECK(parse_retry_after("") == 0);
    CHECK(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") == 0);
    CHECK(parse_retry_after("99999999999999999999") == (1ULL << 40));
    CHECK(parse_retry_after("-1") == 0);
  }

  TEST_CASE("each report must answer the action handed out: anything else is a driver's bug") {
    const job j = sim_job(R"("connections":1,"rate":{"requests_per_second":0})");
    std::istringstream in(sim_devices(10));
    device_stream stream(make_device_reader(device_format::csv, in));
    struct null_sink : result_sink {
      void on_result(const device_result&) override {}
    } sink;
    dispatcher d(j, stream, sink, {}, 1, 1);
    d.start(0, 0, "Bearer t1", "h");
    using kind = dispatch_action::kind;
    CHECK_THROWS_AS(d.on_written(0, {}, 0), std::logic_error);  // nothing handed out
    REQUIRE(d.next(0, 0).what == kind::connect);
    CHECK_THROWS_AS(d.next(0, 0), std::logic_error);         // the connect not reported yet
    CHECK_THROWS_AS(d.on_read(0, {}, 0), std::logic_error);  // not what was handed out
    d.on_connected(0, {}, 1);
    REQUIRE(d.next(0, 1).what == kind::write);
    CHECK_THROWS_AS(d.on_connected(0, {}, 1), std::logic_error);
    d.on_written(0, {}, 2);
    REQUIRE(d.next(0, 2).what == kind::read);
    CHECK_THROWS_AS(d.on_written(0, {}, 3), std::logic_error);
  }
}  // TEST_SUITE
