// The library on the caller's executor: rollouts through async_run on one
// io_context and one thread, beside the caller's own work, cancelled
// through their cancellation slots; a connection that fails. Each device of
// each job accounted for exactly once.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <sstream>
#include <vector>

using namespace fleetcast;
namespace asio = boost::asio;

namespace {

struct counting_sink : result_sink {
  std::vector<int> seen;
  std::vector<outcome_reason> reasons;
  explicit counting_sink(std::size_t n) : seen(n), reasons(n) {}
  void on_result(const device_result& r) override {
    REQUIRE(r.index < seen.size());
    ++seen[r.index];
    reasons[r.index] = r.reason;
  }
  std::size_t results() const {
    std::size_t n = 0;
    for (int s : seen) n += static_cast<std::size_t>(s);
    return n;
  }
  void check_exactly_once() const {
    std::size_t wrong = 0;
    for (int s : seen) wrong += s != 1;
    CHECK_MESSAGE(wrong == 0, wrong << " devices without exactly one result");
  }
  std::size_t count(outcome_reason r) const {
    return static_cast<std::size_t>(std::count(reasons.begin(), reasons.end(), r));
  }
};

std::string devices_csv(std::size_t n, std::string_view prefix) {
  std::string s = "productKey,deviceKey\n";
  for (std::size_t i = 0; i < n; ++i) s += fmt::format("p1,{}{}\n", prefix, i);
  return s;
}

// A job in code: the minimal one over the emulator, with `members`.
job job_for(const net::emulator& emu, std::string_view members) {
  const std::string text = fmt::format(
      R"({{"endpoint":"{}","auth":{{"token_env":"FLEETCAST_TEST_TOKEN"}},
           "command":{{"type":2,"data":"[{{\"switch\":true}}]"}},"devices":{{"file":"d.csv"}},{}}})",
      emu.url(), members);
  auto parsed = parse_job(text, "/tmp/async-job.json");
  REQUIRE_MESSAGE(parsed.job, (parsed.errors.empty() ? "" : parsed.errors[0].describe("job")));
  return *parsed.job;
}

struct rig {
  net::emulator emu;
  rig()
      : emu([] {
          emulator_config c;
          c.listen = "127.0.0.1:0";
          c.threads = 1;
          return c;
        }()) {
    ::setenv("FLEETCAST_TEST_TOKEN", "Bearer async-test", 1);
  }
  net::rollout_options options() const {
    net::rollout_options o;
    o.extra_ca_pem = emu.certificate_pem();
    o.system_trust_store = false;
    return o;
  }
};

}  // namespace

TEST_CASE(
    "two rollouts on one io_context and one thread, beside a timer of the caller's, one "
    "cancelled through its cancellation slot") {
  rig r;
  asio::io_context ioc(1);
  const job ja = job_for(r.emu, R"("batch":{"max_devices":100},"rate":{"requests_per_second":0})");
  const job jb = job_for(r.emu, R"("batch":{"max_devices":100},"rate":{"requests_per_second":40})");
  const std::size_t na = 5000, nb = 20000;
  std::istringstream ia(devices_csv(na, "a")), ib(devices_csv(nb, "b"));
  device_stream da(make_device_reader(device_format::csv, ia));
  device_stream db(make_device_reader(device_format::csv, ib));
  counting_sink sa(na), sb(nb);
  // One TLS context for both: the trust store loaded once.
  auto options = r.options();
  std::string error;
  options.tls = net::tls_client::make(ja.tls, error, r.emu.certificate_pem(), false);
  REQUIRE_MESSAGE(options.tls, error);
  net::rollout a(ioc.get_executor(), ja, da, sa, options);
  net::rollout b(ioc.get_executor(), jb, db, sb, options);

  std::optional<net::rollout_outcome> oa, ob;
  asio::cancellation_signal cancel_b;
  a.async_run([&](net::rollout_outcome o) { oa = std::move(o); });
  b.async_run(asio::bind_cancellation_slot(cancel_b.slot(),
                                           [&](net::rollout_outcome o) { ob = std::move(o); }));

  // The caller's own work: a timer every 20 ms, which must keep its
  // schedule while both run; it cancels b once b has 1,000 results.
  asio::steady_timer tick(ioc);
  std::vector<std::chrono::steady_clock::time_point> ticks;
  bool cancelled = false;
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](boost::system::error_code) {
      ticks.push_back(std::chrono::steady_clock::now());
      if (!cancelled && sb.results() >= 1000) {
        cancelled = true;
        cancel_b.emit(asio::cancellation_type::total);
      }
      if (!oa || !ob) arm();
    });
  };
  arm();
  ioc.run();

  REQUIRE(oa);
  REQUIRE(ob);
  CHECK(oa->started());
  CHECK(oa->summary.state == job_state::completed);
  sa.check_exactly_once();
  CHECK(sa.count(outcome_reason::accepted) == na);
  CHECK(ob->summary.state == job_state::cancelled);
  sb.check_exactly_once();
  CHECK(sb.count(outcome_reason::accepted) >= 1000);
  CHECK(sb.count(outcome_reason::cancelled) > 0);
  CHECK(sb.count(outcome_reason::accepted) + sb.count(outcome_reason::cancelled) == nb);
  CHECK(cancelled);
  // The timer kept firing: no gap between its ticks much over its period.
  REQUIRE(ticks.size() >= 10);
  std::chrono::steady_clock::duration worst{};
  for (std::size_t i = 1; i < ticks.size(); ++i) worst = std::max(worst, ticks[i] - ticks[i - 1]);
  MESSAGE("timer: " << ticks.size() << " ticks, the longest gap "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(worst).count()
                    << " ms");
  CHECK(worst < std::chrono::milliseconds(500));
}

TEST_CASE("a terminal cancellation cuts the requests in flight, a start-up error is an outcome") {
  rig r;
  asio::io_context ioc(1);
  SUBCASE("terminal") {
    emulator_config slow;
    const job j = job_for(
        r.emu, R"("batch":{"max_devices":10},"connections":2,"rate":{"requests_per_second":20})");
    std::istringstream in(devices_csv(2000, "t"));
    device_stream d(make_device_reader(device_format::csv, in));
    counting_sink s(2000);
    net::rollout ro(ioc.get_executor(), j, d, s, r.options());
    asio::cancellation_signal sig;
    std::optional<net::rollout_outcome> out;
    ro.async_run(asio::bind_cancellation_slot(sig.slot(),
                                              [&](net::rollout_outcome o) { out = std::move(o); }));
    asio::steady_timer t(ioc, std::chrono::milliseconds(300));
    t.async_wait([&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
    ioc.run();
    REQUIRE(out);
    CHECK(out->summary.state == job_state::cancelled);
    s.check_exactly_once();
  }
  SUBCASE("a proxy setting that cannot be used: an outcome, not an exception") {
    job j = job_for(r.emu, R"("batch":{"max_devices":10})");
    j.proxy = "http://[::1";  // set in code past validate()
    std::istringstream in(devices_csv(10, "p"));
    device_stream d(make_device_reader(device_format::csv, in));
    counting_sink s(10);
    std::optional<net::rollout> ro;
    CHECK_NOTHROW(ro.emplace(ioc.get_executor(), j, d, s, r.options()));
    std::optional<net::rollout_outcome> out;
    ro->async_run([&](net::rollout_outcome x) { out = std::move(x); });
    ioc.run();
    REQUIRE(out);
    CHECK(!out->started());
    CHECK(!out->startup_error.empty());
    CHECK(s.results() == 0);
    std::string error;
    job bad = j;
    bad.tls.ca_file = "/nonexistent/ca.pem";
    CHECK(!net::tls_client::make(bad.tls, error));
    CHECK(error.find("/nonexistent/ca.pem") != std::string::npos);
  }
  SUBCASE("start-up error") {
    job j = job_for(r.emu, R"("batch":{"max_devices":10})");
    j.tls.ca_file = "/nonexistent/ca.pem";
    std::istringstream in(devices_csv(10, "s"));
    device_stream d(make_device_reader(device_format::csv, in));
    counting_sink s(10);
    auto o = r.options();
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    std::optional<net::rollout_outcome> out;
    ro.async_run([&](net::rollout_outcome x) { out = std::move(x); });
    ioc.run();
    REQUIRE(out);
    CHECK(!out->started());
    CHECK(out->startup_error.find("tls.ca_file") != std::string::npos);
    CHECK(s.results() == 0);
  }
}

TEST_CASE("a connection that fails (an exception in its work) fails the job, every device once") {
  rig r;
  const job j = job_for(
      r.emu,
      R"("batch":{"max_devices":10},"connections":3,"pipeline_depth":2,"rate":{"requests_per_second":0})");
  std::istringstream in(devices_csv(3000, "f"));
  device_stream d(make_device_reader(device_format::csv, in));
  counting_sink s(3000);
  auto o = r.options();
  int batches = 0;
  o.before_send = [&batches](const batch&) -> std::string {
    if (++batches == 40) throw std::runtime_error("a bug in the journal (simulated)");
    return {};
  };
  net::rollout ro(j, d, s, o);
  const auto summary = ro.run();
  CHECK(summary.state == job_state::failed);
  CHECK(ro.failure().find("a connection failed: a bug in the journal (simulated)") !=
        std::string::npos);
  s.check_exactly_once();
  CHECK(s.count(outcome_reason::accepted) >= 300);
  CHECK(s.count(outcome_reason::job_failed) > 0);
}

TEST_CASE(
    "a connection pool: the next rollout to the endpoint reuses the connections, no new "
    "handshake, an idle one past idle_timeout is not reused") {
  rig r;
  asio::io_context ioc(1);
  const job j = job_for(
      r.emu, R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0})");
  auto options = r.options();
  std::string error;
  options.tls = net::tls_client::make(j.tls, error, r.emu.certificate_pem(), false);
  REQUIRE_MESSAGE(options.tls, error);
  options.pool = std::make_shared<net::connection_pool>();
  std::vector<std::unique_ptr<counting_sink>> sinks;
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    std::istringstream in(devices_csv(3000, fmt::format("r{}-", round)));
    device_stream d(make_device_reader(device_format::csv, in));
    counting_sink s(3000);
    net::rollout ro(ioc.get_executor(), j, d, s, options);
    std::optional<net::rollout_outcome> out;
    ro.async_run([&](net::rollout_outcome o) { out = std::move(o); });
    ioc.restart();
    ioc.run();
    REQUIRE(out);
    CHECK(out->summary.state == job_state::completed);
    s.check_exactly_once();
    CHECK(s.count(outcome_reason::accepted) == 3000);
    CHECK(options.pool->idle() == 3);
  }
  CHECK(options.pool->opened() == 3);
  CHECK(options.pool->reused() == 6);
  CHECK(r.emu.state().counter(emulator_counter::tls_handshakes) == 3);
  CHECK(r.emu.state().peak_open_connections() <= 3);
  options.pool->close_idle();
  CHECK(options.pool->idle() == 0);

  // Past the idle timeout: new connections.
  options.pool = std::make_shared<net::connection_pool>(std::chrono::milliseconds(0));
  for (int round = 0; round < 2; ++round) {
    std::istringstream in(devices_csv(500, fmt::format("t{}-", round)));
    device_stream d(make_device_reader(device_format::csv, in));
    counting_sink s(500);
    net::rollout ro(ioc.get_executor(), j, d, s, options);
    std::optional<net::rollout_outcome> out;
    ro.async_run([&](net::rollout_outcome o) { out = std::move(o); });
    ioc.restart();
    ioc.run();
    REQUIRE(out);
    s.check_exactly_once();
  }
  CHECK(options.pool->opened() == 6);
  CHECK(options.pool->reused() == 0);
  CHECK(r.emu.state().counter(emulator_counter::tls_handshakes) == 9);
}
