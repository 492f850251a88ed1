// The library on the caller's executor: rollouts through async_run on one
// io_context and one thread, beside the caller's own work, cancelled
// through their cancellation slots; a connection that fails. Each device of
// each job accounted for exactly once.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>

#include "tests/net/loopback.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>
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

// A run's completion, kept: its error code and outcome.
struct completion {
  boost::system::error_code code;
  std::optional<net::rollout_outcome> out;
  auto handler() {
    return [this](boost::system::error_code ec, net::rollout_outcome o) {
      code = ec;
      out = std::move(o);
    };
  }
};

std::string devices_csv(std::size_t n, std::string_view prefix) {
  std::string s = "productKey,deviceKey\n";
  for (std::size_t i = 0; i < n; ++i) s += fmt::format("p1,{}{}\n", prefix, i);
  return s;
}

// `n` devices in memory, their stream and a sink for their results.
struct fleet {
  std::istringstream in;
  device_stream stream;
  counting_sink sink;
  fleet(std::size_t n, std::string_view prefix)
      : in(devices_csv(n, prefix)), stream(make_device_reader(device_format::csv, in)), sink(n) {}
};

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
      : emu(test::loopback_emulator()) {
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
  a.async_run([&](boost::system::error_code, net::rollout_outcome o) { oa = std::move(o); });
  b.async_run(asio::bind_cancellation_slot(
      cancel_b.slot(),
      [&](boost::system::error_code, net::rollout_outcome o) { ob = std::move(o); }));

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
    fleet f(2000, "t");
    auto& [in, d, s] = f;
    net::rollout ro(ioc.get_executor(), j, d, s, r.options());
    asio::cancellation_signal sig;
    std::optional<net::rollout_outcome> out;
    ro.async_run(asio::bind_cancellation_slot(
        sig.slot(),
        [&](boost::system::error_code, net::rollout_outcome o) { out = std::move(o); }));
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
    fleet f(10, "p");
    auto& [in, d, s] = f;
    std::optional<net::rollout> ro;
    CHECK_NOTHROW(ro.emplace(ioc.get_executor(), j, d, s, r.options()));
    completion run;
    ro->async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    REQUIRE(out);
    CHECK(!out->started());
    CHECK(code == net::rollout_errc::proxy_setting);
    CHECK(code.category().name() == std::string_view("fleetcast.rollout"));
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
    fleet f(10, "s");
    auto& [in, d, s] = f;
    auto o = r.options();
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    completion run;
    ro.async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    REQUIRE(out);
    CHECK(!out->started());
    CHECK(code == net::rollout_errc::tls_setup);
    CHECK(out->startup_error.find("tls.ca_file") != std::string::npos);
    CHECK(s.results() == 0);
  }
}

TEST_CASE("a connection that fails (an exception in its work) fails the job, every device once") {
  rig r;
  const job j = job_for(
      r.emu,
      R"("batch":{"max_devices":10},"connections":3,"pipeline_depth":2,"rate":{"requests_per_second":0})");
  fleet f(3000, "f");
  auto& [in, d, s] = f;
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
    ro.async_run([&](boost::system::error_code, net::rollout_outcome o) { out = std::move(o); });
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
    ro.async_run([&](boost::system::error_code, net::rollout_outcome o) { out = std::move(o); });
    ioc.restart();
    ioc.run();
    REQUIRE(out);
    s.check_exactly_once();
  }
  CHECK(options.pool->opened() == 6);
  CHECK(options.pool->reused() == 0);
  CHECK(r.emu.state().counter(emulator_counter::tls_handshakes) == 9);
}

TEST_CASE(
    "safe on a multi-threaded executor without a strand: four rollouts at once on a "
    "thread_pool(4), every device once, each completion on the pool") {
  rig r;
  asio::thread_pool pool(4);
  const job j = job_for(
      r.emu,
      R"("batch":{"max_devices":50},"connections":3,"pipeline_depth":2,"rate":{"requests_per_second":0})");
  constexpr std::size_t rollouts = 4, n = 4000;
  std::vector<std::unique_ptr<std::istringstream>> inputs;
  std::vector<std::unique_ptr<device_stream>> streams;
  std::vector<std::unique_ptr<counting_sink>> sinks;
  std::vector<std::unique_ptr<net::rollout>> runs;
  std::vector<std::optional<net::rollout_outcome>> outs(rollouts);
  std::atomic<int> completed{0};
  for (std::size_t k = 0; k < rollouts; ++k) {
    inputs.push_back(std::make_unique<std::istringstream>(devices_csv(n, fmt::format("m{}-", k))));
    streams.push_back(
        std::make_unique<device_stream>(make_device_reader(device_format::csv, *inputs.back())));
    sinks.push_back(std::make_unique<counting_sink>(n));
    runs.push_back(std::make_unique<net::rollout>(pool.get_executor(), j, *streams.back(),
                                                  *sinks.back(), r.options()));
  }
  for (std::size_t k = 0; k < rollouts; ++k) {
    runs[k]->async_run([&, k](boost::system::error_code ec, net::rollout_outcome o) {
      CHECK(!ec);
      outs[k] = std::move(o);
      ++completed;
    });
  }
  pool.join();  // returns once every run completed: their work is kept until then
  CHECK(completed == static_cast<int>(rollouts));
  for (std::size_t k = 0; k < rollouts; ++k) {
    CAPTURE(k);
    REQUIRE(outs[k]);
    CHECK(outs[k]->summary.state == job_state::completed);
    sinks[k]->check_exactly_once();
    CHECK(sinks[k]->count(outcome_reason::accepted) == n);
  }
}

TEST_CASE(
    "Asio's conventions: the handler's executor keeps work until the completion, the default "
    "token is deferred, a coroutine gets (error_code, outcome)") {
  rig r;
  const job j = job_for(r.emu, R"("batch":{"max_devices":20},"rate":{"requests_per_second":0})");
  SUBCASE("a handler bound to another io_context: its run() waits for the completion") {
    asio::io_context engine(1), other(1);
    fleet f(300, "h");
    auto& [in, d, s] = f;
    net::rollout ro(engine.get_executor(), j, d, s, r.options());
    std::optional<net::rollout_outcome> out;
    std::thread::id called_on;
    ro.async_run(asio::bind_executor(other.get_executor(),
                                     [&](boost::system::error_code ec, net::rollout_outcome o) {
                                       CHECK(!ec);
                                       called_on = std::this_thread::get_id();
                                       out = std::move(o);
                                     }));
    std::thread engine_thread([&engine] { engine.run(); });
    other.run();  // returns only when nothing is left: after the handler
    engine_thread.join();
    REQUIRE(out);
    CHECK(called_on == std::this_thread::get_id());
    CHECK(out->summary.state == job_state::completed);
    s.check_exactly_once();
  }
  SUBCASE("the default token: asio::deferred") {
    asio::io_context ioc(1);
    fleet f(100, "d");
    auto& [in, d, s] = f;
    net::rollout ro(ioc.get_executor(), j, d, s, r.options());
    auto op = ro.async_run();  // nothing starts yet
    ioc.poll();
    CHECK(s.results() == 0);
    ioc.restart();  // poll() ran out of work: the context stopped
    std::optional<net::rollout_outcome> out;
    std::move(op)([&](boost::system::error_code ec, net::rollout_outcome o) {
      CHECK(!ec);
      out = std::move(o);
    });
    ioc.run();
    REQUIRE(out);
    s.check_exactly_once();
  }
  SUBCASE("in a coroutine") {
    asio::io_context ioc(1);
    fleet f(100, "c");
    auto& [in, d, s] = f;
    net::rollout ro(ioc.get_executor(), j, d, s, r.options());
    std::optional<net::rollout_outcome> out;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto [ec, o] = co_await ro.async_run(asio::as_tuple(asio::use_awaitable));
          CHECK(!ec);
          out = std::move(o);
        },
        asio::detached);
    ioc.run();
    REQUIRE(out);
    CHECK(out->summary.state == job_state::completed);
    s.check_exactly_once();
  }
}

TEST_CASE(
    "a cancel of 2,000,000 devices: the skipped records are reported a slice at a time, the "
    "caller's loop turns between slices") {
  rig r;
  asio::io_context ioc(1);
  // Slow on purpose: a few requests are answered, the rest is skipped.
  const job j = job_for(r.emu, R"("batch":{"max_devices":100},"rate":{"requests_per_second":10})");
  constexpr std::size_t n = 2'000'000;
  std::istringstream in(devices_csv(n, "s"));
  device_stream d(make_device_reader(device_format::csv, in));
  // The caller's loop: a heartbeat posted again at each turn. Results
  // reported between two beats are one stall of it.
  std::uint64_t turn = 0;
  struct stall_sink : counting_sink {
    std::uint64_t& turn;
    std::uint64_t last_turn = ~0ull, in_turn = 0, most_in_turn = 0;
    stall_sink(std::size_t size, std::uint64_t& t) : counting_sink(size), turn(t) {}
    void on_result(const device_result& res) override {
      counting_sink::on_result(res);
      if (turn != last_turn) {
        last_turn = turn;
        in_turn = 0;
      }
      most_in_turn = std::max(most_in_turn, ++in_turn);
    }
  } s(n, turn);
  net::rollout ro(ioc.get_executor(), j, d, s, r.options());
  std::optional<net::rollout_outcome> out;
  ro.async_run([&](boost::system::error_code, net::rollout_outcome o) { out = std::move(o); });
  bool cancelled = false;
  // The stall as the loop's thread spent it working (its CPU time between
  // two beats: what a preempted test process does not add), and as the
  // wall clock saw it (printed).
  const auto thread_cpu = [] {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return std::chrono::nanoseconds(t.tv_sec * 1'000'000'000LL + t.tv_nsec);
  };
  using clock = std::chrono::steady_clock;
  clock::duration worst{};
  std::chrono::nanoseconds worst_cpu{};
  auto last = clock::now();
  auto last_cpu = thread_cpu();
  std::function<void()> beat = [&] {
    ++turn;
    const auto now = clock::now();
    const auto now_cpu = thread_cpu();
    if (cancelled) {
      worst = std::max(worst, now - last);
      worst_cpu = std::max(worst_cpu, now_cpu - last_cpu);
    }
    last = now;
    last_cpu = now_cpu;
    if (!cancelled && s.results() >= 100) {  // the first answer: cancel now
      cancelled = true;
      ro.cancel();
    }
    if (!out) asio::post(ioc, beat);
  };
  asio::post(ioc, beat);
  ioc.run();
  REQUIRE(out);
  CHECK(out->summary.state == job_state::cancelled);
  s.check_exactly_once();
  CHECK(s.count(outcome_reason::cancelled) + s.count(outcome_reason::accepted) == n);
  CHECK(s.count(outcome_reason::cancelled) > n - 10'000);
  const double ms = std::chrono::duration<double, std::milli>(worst).count();
  const double cpu_ms = std::chrono::duration<double, std::milli>(worst_cpu).count();
  MESSAGE("the most results in one turn of the loop: "
          << s.most_in_turn << "; the longest stall after the cancel: " << cpu_ms
          << " ms of the loop thread's CPU, " << ms << " ms on the wall clock");
  // No burst: a slice is at most 4,096 records (plus one batch).
  CHECK(s.most_in_turn <= 4096 + 100);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK_MESSAGE(cpu_ms < 20.0, "the longest stall of the caller's loop after the cancel");
#endif
}

TEST_CASE(
    "tokens from the embedder: one in memory rotated while the run goes on, a provider "
    "answering from another thread, a provider that says no") {
  emulator_config c;
  c.listen = "127.0.0.1:0";
  c.threads = 1;
  c.faults.token_expires_after_requests = 5;  // each token refused (5032) after 5 uses
  net::emulator emu(c);
  auto options = [&emu] {
    net::rollout_options o;
    o.extra_ca_pem = emu.certificate_pem();
    o.system_trust_store = false;
    return o;
  };
  ::setenv("FLEETCAST_TEST_TOKEN", "", 1);  // the job's own source is not read
  const job j = job_for(
      emu,
      R"("batch":{"max_devices":10},"connections":1,"pipeline_depth":1,"rate":{"requests_per_second":0})");
  asio::io_context ioc(1);
  SUBCASE("in memory, rotated every 4 answers: never refused") {
    fleet f(300, "m");
    auto& [in, d, s] = f;
    auto o = options();
    o.token = "Bearer memory-1";
    net::rollout* self = nullptr;
    int accounted = 0, refused = 0, next = 2;
    o.on_attempt = [&](std::string_view what, std::size_t) {
      if (what == "token_refused") ++refused;
      if (what == "accounted" && ++accounted % 4 == 0)
        CHECK(self->rotate_token(fmt::format("Bearer memory-{}", next++)).empty());
    };
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    self = &ro;
    CHECK(!ro.rotate_token("Bearer two\nlines").empty());
    completion run;
    ro.async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    REQUIRE(out);
    CHECK(!code);
    CHECK(out->summary.state == job_state::completed);
    CHECK(refused == 0);
    s.check_exactly_once();
    CHECK(s.count(outcome_reason::accepted) == 300);
  }
  SUBCASE("in memory, never rotated: refused, no other, the job fails") {
    fleet f(300, "n");
    auto& [in, d, s] = f;
    auto o = options();
    o.token = "Bearer memory-only";
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    completion run;
    ro.async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    REQUIRE(out);
    CHECK(!code);
    CHECK(out->summary.state == job_state::failed);
    CHECK(ro.failure().find("no fresh token") != std::string::npos);
    s.check_exactly_once();
    CHECK(s.count(outcome_reason::accepted) == 50);
  }
  SUBCASE("a provider that answers from another thread, a fresh token each time") {
    fleet f(300, "p");
    auto& [in, d, s] = f;
    asio::thread_pool vault(1);
    std::atomic<int> asked{0};
    auto o = options();
    o.token_provider = [&](net::rollout_options::token_reply reply) {
      const int n = ++asked;
      asio::post(vault, [reply = std::move(reply), n] {
        reply(fmt::format("Bearer provided-{}", n), {});
      });
    };
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    completion run;
    ro.async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    vault.join();
    REQUIRE(out);
    CHECK(!code);
    CHECK(out->summary.state == job_state::completed);
    s.check_exactly_once();
    CHECK(s.count(outcome_reason::accepted) == 300);
    CHECK(asked >= 6);  // 30 requests, 5 a token
  }
  SUBCASE("a provider that says no: a start-up error, nothing sent") {
    fleet f(30, "q");
    auto& [in, d, s] = f;
    auto o = options();
    o.token_provider = [](net::rollout_options::token_reply reply) {
      reply({}, "the vault is sealed");
    };
    net::rollout ro(ioc.get_executor(), j, d, s, o);
    completion run;
    ro.async_run(run.handler());
    auto& [code, out] = run;
    ioc.run();
    REQUIRE(out);
    CHECK(code == net::rollout_errc::no_token);
    CHECK(out->startup_error.find("the token provider: the vault is sealed") != std::string::npos);
    CHECK(s.results() == 0);
  }
}
