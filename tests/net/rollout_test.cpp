// The engine against the real emulator over TLS on loopback, under every
// fault the emulator plays, with pipelining off and on. Each case checks,
// device by device, from the engine's results and the emulator's record:
// every input record has exactly one result; a device was commanded more
// than once only when its result is uncertain; a device commanded without
// the engine knowing is uncertain too; a success carries a ticket the
// emulator issued for that device.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include "net/server/tls_identity.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

using namespace fleetcast;
namespace fs = std::filesystem;

namespace {

struct owned_result {
  std::uint64_t index;
  std::string product_key, device_key, ticket, msg;
  outcome_reason reason;
  std::optional<std::int64_t> code;
  std::uint32_t attempts;
  bool uncertain;
};

struct collecting_sink : result_sink {
  std::vector<owned_result> results;
  void on_result(const device_result& r) override {
    results.push_back({r.index, std::string(r.device.product_key), std::string(r.device.device_key),
                       std::string(r.ticket), std::string(r.msg), r.reason, r.code, r.attempts,
                       r.uncertain});
  }
};

struct executed {
  int times = 0;
  std::set<std::string> tickets;
  std::vector<std::uint64_t> requests;
};

struct run_outcome {
  run_summary summary;
  std::string failure;
  std::vector<owned_result> results;
  std::map<std::string, executed> record;  // by productKey/deviceKey
  std::map<std::uint64_t, std::uint64_t> request_at_ms;
  std::uint64_t peak_per_gateway = 0;
  std::uint64_t counter(emulator_counter c) const {
    return counters.at(static_cast<std::size_t>(c));
  }
  std::vector<std::uint64_t> counters;
};

class temp_dir {
 public:
  temp_dir() {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() / fmt::format("fleetcast-rollout-{}-{}", ::getpid(), n++);
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string csv_devices(int n, const std::vector<std::string>& products = {"p1"}) {
  std::string s = "productKey,deviceKey\n";
  for (int i = 0; i < n; ++i) s += fmt::format("{},86{:013}\n", products[i % products.size()], i);
  return s;
}

// Runs a job (JSON members given, endpoint and auth filled in) against an
// emulator, and gathers results, record and counters.
run_outcome run_against(emulator_config ecfg, const std::string& job_members,
                        const std::string& csv,
                        const std::function<void(net::emulator&, const fs::path&)>& during = {},
                        std::string token_setup = "",
                        std::function<void(const net::rollout_progress&)> on_progress = {}) {
  temp_dir dir;
  ecfg.listen = "127.0.0.1:0";
  ecfg.tls = true;
  ecfg.threads = 1;
  ecfg.record = (dir.path() / "record.ndjson").string();
  run_outcome out;
  {
    net::emulator emu(ecfg);
    const auto token_file = dir.path() / "token";
    std::ofstream(token_file) << "Bearer first\n";
    const std::string auth = token_setup.empty()
                                 ? fmt::format(R"({{"token_file":"{}"}})", token_file.string())
                                 : token_setup;
    const std::string text = fmt::format(
        R"({{"endpoint":"{}","auth":{},"command":{{"type":2,"data":"[{{\"switch\":true}}]"}},
             "devices":{{"file":"devices.csv"}}{}}})",
        emu.url(), auth, job_members.empty() ? "" : "," + job_members);
    auto parsed = parse_job(text, (dir.path() / "job.json").string());
    REQUIRE_MESSAGE(parsed.job, (parsed.errors.empty() ? "" : parsed.errors[0].describe("job")));
    std::istringstream in(csv);
    device_stream devices(make_device_reader(device_format::csv, in));
    collecting_sink sink;
    net::rollout_options options;
    options.extra_ca_pem = emu.certificate_pem();
    options.on_progress = std::move(on_progress);
    std::string plan_error;
    REQUIRE_MESSAGE(
        net::plan_phases(
            *parsed.job,
            [&csv](std::string&) { return make_text_device_reader(device_format::csv, csv); },
            options, plan_error),
        plan_error);
    net::rollout r(*parsed.job, devices, sink, options);
    std::thread helper;
    std::atomic<bool> stop{false};
    if (during) helper = std::thread([&] { during(emu, token_file); });
    out.summary = r.run();
    out.failure = r.failure();
    if (helper.joinable()) helper.join();
    out.results = std::move(sink.results);
    out.peak_per_gateway = emu.state().peak_in_flight_per_gateway();
    for (std::size_t i = 0; i < static_cast<std::size_t>(emulator_counter::count_); ++i) {
      out.counters.push_back(emu.state().counter(static_cast<emulator_counter>(i)));
    }
  }
  simdjson::dom::parser p;
  simdjson::padded_string text;
  REQUIRE(simdjson::padded_string::load(ecfg.record).get(text) == simdjson::SUCCESS);
  for (auto doc : p.parse_many(text)) {
    simdjson::dom::element e;
    REQUIRE(doc.get(e) == simdjson::SUCCESS);
    const auto key =
        fmt::format("{}/{}", std::string_view(e["productKey"]), std::string_view(e["deviceKey"]));
    auto& x = out.record[key];
    ++x.times;
    std::string_view ticket;
    if (e["ticket"].get_string().get(ticket) == simdjson::SUCCESS) x.tickets.emplace(ticket);
    const auto request = std::uint64_t(e["request"]);
    x.requests.push_back(request);
    out.request_at_ms[request] = std::uint64_t(e["at_ms"]);
  }
  return out;
}

// The product's first promise, and the meaning of `uncertain`, device by device.
void check_accounting(const run_outcome& o, int devices) {
  std::vector<int> seen(devices, 0);
  for (const auto& r : o.results) {
    REQUIRE(r.index < static_cast<std::uint64_t>(devices));
    ++seen[r.index];
  }
  int missing = 0, twice = 0;
  for (int s : seen) {
    missing += s == 0;
    twice += s > 1;
  }
  CHECK(missing == 0);
  CHECK(twice == 0);
  CHECK(o.summary.records == static_cast<std::uint64_t>(devices));
  std::uint64_t by_status = 0;
  for (auto n : o.summary.by_status) by_status += n;
  CHECK(by_status == static_cast<std::uint64_t>(devices));

  int violations = 0;
  for (const auto& r : o.results) {
    const auto it = o.record.find(r.product_key + "/" + r.device_key);
    const int times = it == o.record.end() ? 0 : it->second.times;
    const bool ok_status =
        r.reason == outcome_reason::accepted || r.reason == outcome_reason::device_failed;
    bool fine = true;
    if (times > 1 && !r.uncertain) fine = false;  // sent twice without saying so
    if (ok_status && times == 0) fine = false;    // a result for something never executed
    if (!ok_status && times > 0 && !r.uncertain) fine = false;  // executed behind our back
    if (r.reason == outcome_reason::accepted &&
        (it == o.record.end() || !it->second.tickets.count(r.ticket))) {
      fine = false;  // a ticket the emulator never issued for this device
    }
    if (r.attempts < static_cast<std::uint32_t>(std::min(times, 1))) fine = false;
    if (!fine) {
      if (++violations <= 5) {
        MESSAGE(fmt::format(
            "device {} ({}): executed {} times, reason {}, uncertain {}, attempts {}", r.index,
            r.device_key, times, to_string(r.reason), r.uncertain, r.attempts));
      }
    }
  }
  CHECK(violations == 0);
}

std::string fast_retry(int attempts = 8) {
  return fmt::format(
      R"("retry":{{"max_attempts":{},"base_delay_ms":5,"max_delay_ms":50}},"rate":{{"requests_per_second":0}},"timeouts":{{"connect_ms":2000,"request_ms":2000}})",
      attempts);
}

}  // namespace

TEST_CASE("a clean run: every device succeeds once, over TLS, pipelined or not") {
  for (int depth : {1, 4}) {
    CAPTURE(depth);
    emulator_config e;
    e.device_failure_ratio = 0.1;
    const int n = 2000;
    auto o = run_against(
        e,
        fmt::format(R"("batch":{{"max_devices":100}},"connections":3,"pipeline_depth":{},{})",
                    depth, fast_retry()),
        csv_devices(n));
    check_accounting(o, n);
    CHECK(o.summary.state == job_state::completed);
    CHECK(o.summary.count_of(outcome_reason::accepted) +
              o.summary.count_of(outcome_reason::device_failed) ==
          n);
    CHECK(o.summary.count_of(outcome_reason::device_failed) > 100);
    CHECK(o.summary.requests == 20);
    CHECK(o.summary.retries == 0);
    for (const auto& [k, x] : o.record) CHECK(x.times == 1);
  }
}

TEST_CASE("faults: resets, 502, 503, 5340 and stalls, with pipelining off and on") {
  struct fault_case {
    const char* name;
    std::function<void(emulator_faults&)> set;
    std::string extra;
  };
  const std::vector<fault_case> cases = {
      {"reset", [](emulator_faults& f) { f.reset_ratio = 0.15; }, ""},
      {"502", [](emulator_faults& f) { f.http_502_ratio = 0.15; }, ""},
      {"503", [](emulator_faults& f) { f.http_503_ratio = 0.15; }, ""},
      {"5340", [](emulator_faults& f) { f.code_5340_ratio = 0.15; }, ""},
      {"stall",
       [](emulator_faults& f) {
         f.stall_ratio = 0.1;
         f.stall_ms = 1500;
       },
       R"("timeouts":{"connect_ms":2000,"request_ms":300},)"},
      {"close after 3", [](emulator_faults& f) { f.close_after_requests = 3; }, ""},
      {"missing devices", [](emulator_faults& f) { f.missing_device_ratio = 0.05; }, ""},
  };
  for (const auto& fc : cases) {
    for (int depth : {1, 4}) {
      CAPTURE(fc.name);
      CAPTURE(depth);
      emulator_config e;
      e.device_failure_ratio = 0.05;
      e.seed = 11;
      fc.set(e.faults);
      const int n = 1500;
      std::string members =
          fmt::format(R"({}"batch":{{"max_devices":50}},"connections":2,"pipeline_depth":{},{})",
                      fc.extra, depth, fast_retry(10));
      if (!fc.extra.empty()) {  // the case sets its own timeouts
        members = fmt::format(
            R"({}"batch":{{"max_devices":50}},"connections":2,"pipeline_depth":{},"retry":{{"max_attempts":10,"base_delay_ms":5,"max_delay_ms":50}},"rate":{{"requests_per_second":0}})",
            fc.extra, depth);
      }
      auto o = run_against(e, members, csv_devices(n));
      check_accounting(o, n);
      CHECK(o.summary.state == job_state::completed);
      const auto faults =
          o.counter(emulator_counter::resets) + o.counter(emulator_counter::http_502) +
          o.counter(emulator_counter::http_503) + o.counter(emulator_counter::code_5340) +
          o.counter(emulator_counter::stalls) + o.counter(emulator_counter::closes) +
          o.counter(emulator_counter::unreported);
      CHECK(faults > 0);  // the fault really happened
      if (std::string(fc.name) != "missing devices") {
        // Retried until done: nothing lost to a transient fault.
        CHECK(o.summary.count_of(outcome_reason::accepted) +
                  o.summary.count_of(outcome_reason::device_failed) +
                  o.summary.count_of(outcome_reason::transport_failed) ==
              n);
        const bool retried = o.summary.retries > 0 || std::string(fc.name) == "close after 3";
        CHECK(retried);
      } else {
        CHECK(o.summary.count_of(outcome_reason::missing_in_answer) > 0);
      }
    }
  }
}

TEST_CASE("429 with Retry-After: the engine slows down and still delivers every device once") {
  emulator_config e;
  e.rate_limit_rps = 40;
  const int n = 600;
  auto o = run_against(
      e,
      R"("batch":{"max_devices":10},"connections":4,"retry":{"max_attempts":20,"base_delay_ms":10,"max_delay_ms":200},"rate":{"requests_per_second":0})",
      csv_devices(n));
  check_accounting(o, n);
  CHECK(o.counter(emulator_counter::http_429) > 0);
  CHECK(o.summary.count_of(outcome_reason::accepted) == n);
  for (const auto& [k, x] : o.record) CHECK(x.times == 1);  // a 429 executes nothing
}

TEST_CASE("5312 with batch size auto: splits, then settles on the server's limit") {
  emulator_config e;
  e.max_devices = 37;
  const int n = 5000;
  auto o = run_against(
      e,
      R"("batch":{"max_devices":"auto"},"connections":2,"rate":{"requests_per_second":0},"retry":{"max_attempts":3,"base_delay_ms":5,"max_delay_ms":50})",
      csv_devices(n));
  check_accounting(o, n);
  CHECK(o.summary.count_of(outcome_reason::accepted) == n);
  CHECK(o.counter(emulator_counter::code_5312) > 0);
  CHECK(o.summary.batch_size == 37);
  for (const auto& [k, x] : o.record) CHECK(x.times == 1);
}

TEST_CASE("5041: the devices the user may not command are isolated, the others get the command") {
  emulator_config e;
  e.products = {"p1", "p2"};
  const int n = 600;
  auto o = run_against(e, R"("batch":{"max_devices":100},"connections":2)",
                       csv_devices(n, {"p1", "p2", "p1", "p3"}));
  check_accounting(o, n);
  int refused = 0;
  for (const auto& r : o.results) {
    if (r.product_key == "p3") {
      CHECK(r.reason == outcome_reason::batch_rejected);
      CHECK(r.code == 5041);
      ++refused;
    } else {
      CHECK(r.reason == outcome_reason::accepted);
    }
  }
  CHECK(refused == n / 4);
  for (const auto& [k, x] : o.record) CHECK(!k.starts_with("p3/"));
}

TEST_CASE("a token that expires mid-run: after the 5032 the token file is read again") {
  emulator_config e;
  e.faults.token_expires_after_requests = 15;
  const int n = 250;
  auto o = run_against(
      e, R"("batch":{"max_devices":10},"connections":1)", csv_devices(n),
      [](net::emulator& emu, const fs::path& token_file) {
        // Rotate once the first token is in use (long before it expires), in
        // place, same size, old mtime: invisible to the change check, so only
        // the refusal makes the engine read the file again.
        for (int i = 0; i < 2000 && emu.state().counter(emulator_counter::api_requests) < 2; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        const auto mtime = fs::last_write_time(token_file);
        std::ofstream(token_file, std::ios::in | std::ios::out) << "Bearer secnd\n";
        fs::last_write_time(token_file, mtime);
      });
  check_accounting(o, n);
  CHECK(o.counter(emulator_counter::tokens_expired) == 1);
  CHECK(o.summary.count_of(outcome_reason::accepted) == n);
  CHECK(o.summary.state == job_state::completed);
}

TEST_CASE("a refused token with no fresh one fails the job, the rest is skipped, never lost") {
  emulator_config e;
  e.tokens = {"Bearer other"};
  const int n = 300;
  auto o = run_against(e, R"("batch":{"max_devices":10},"connections":2)", csv_devices(n));
  check_accounting(o, n);
  CHECK(o.summary.state == job_state::failed);
  CHECK(o.failure.find("5032") != std::string::npos);
  CHECK(o.failure.find("Bearer") == std::string::npos);  // the token never shows
  CHECK(o.summary.count_of(outcome_reason::job_failed) == n);
  CHECK(o.record.empty());
}

TEST_CASE("token_command is run again for a fresh token") {
  emulator_config e;
  e.faults.token_expires_after_requests = 4;
  const int n = 200;
  auto o = run_against(e, R"("batch":{"max_devices":10},"connections":1)", csv_devices(n), {},
                       R"x({"token_command":["sh","-c","echo Bearer $(date +%s%N)"]})x");
  check_accounting(o, n);
  CHECK(o.counter(emulator_counter::tokens_expired) >= 3);
  CHECK(o.summary.count_of(outcome_reason::accepted) == n);
}

TEST_CASE("a slow token_command never stops the engine: progress goes on while it runs") {
  // Each call takes 2 s; the emulator refuses a token after 10 requests. Were
  // the command run on the engine's thread, the progress reports (every
  // 250 ms) would stop for 2 s at each refresh.
  emulator_config e;
  e.faults.token_expires_after_requests = 10;
  e.latency_fixed_ms = 20;
  const int n = 250;
  using clock = std::chrono::steady_clock;
  std::vector<std::pair<clock::time_point, bool>> reports;  // when, waiting for a token
  auto o = run_against(
      e, R"("batch":{"max_devices":10},"connections":4)", csv_devices(n), {},
      R"x({"token_command":["sh","-c","sleep 2; echo Bearer $(date +%s%N)"],"command_timeout_ms":10000})x",
      [&](const net::rollout_progress& p) {
        reports.emplace_back(clock::now(), p.waiting_for.find("fresh token") != std::string::npos);
      });
  check_accounting(o, n);
  CHECK(o.summary.count_of(outcome_reason::accepted) == n);
  CHECK(o.counter(emulator_counter::tokens_expired) >= 2);
  REQUIRE(reports.size() >= 2);
  std::int64_t longest_gap_ms = 0;
  int while_fetching = 0;
  for (std::size_t i = 1; i < reports.size(); ++i) {
    longest_gap_ms = std::max<std::int64_t>(
        longest_gap_ms, std::chrono::duration_cast<std::chrono::milliseconds>(reports[i].first -
                                                                              reports[i - 1].first)
                            .count());
    while_fetching += reports[i].second;
  }
  CHECK(while_fetching >= 8);  // two refreshes of 2 s, reported as what the run waits for
  MESSAGE(
      fmt::format("longest gap {} ms, {} reports while fetching", longest_gap_ms, while_fetching));
  CHECK(longest_gap_ms < 1200);
}

TEST_CASE("the configured request rate is never exceeded in any one-second window") {
  emulator_config e;
  const int n = 500;
  auto o = run_against(
      e,
      R"("batch":{"max_devices":10},"connections":4,"rate":{"requests_per_second":20,"burst":1})",
      csv_devices(n));
  check_accounting(o, n);
  std::vector<std::uint64_t> at;
  for (const auto& [id, ms] : o.request_at_ms) at.push_back(ms);
  std::sort(at.begin(), at.end());
  REQUIRE(at.size() == 50);
  std::size_t worst = 0;
  for (std::size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] >= 1000) ++i;
    worst = std::max(worst, j - i + 1);
  }
  MESSAGE("most requests in any 1 s window: " << worst);
  // Rate 20/s plus a burst of 1, plus 1: times are taken where requests
  // arrive, and on a loaded machine one late arrival can bunch up with the
  // next (seen once in a full parallel suite beside a fuzzer).
  CHECK(worst <= 22);
  CHECK(at.back() - at.front() >= 2000);  // 50 requests at 20/s take at least 2.45 s
}

TEST_CASE("the devices/s limit holds across batches") {
  emulator_config e;
  const int n = 300;
  auto o = run_against(
      e,
      R"("batch":{"max_devices":50},"connections":2,"rate":{"requests_per_second":0,"devices_per_second":200,"burst":1})",
      csv_devices(n));
  check_accounting(o, n);
  std::vector<std::uint64_t> at;
  for (const auto& [id, ms] : o.request_at_ms) at.push_back(ms);
  std::sort(at.begin(), at.end());
  REQUIRE(at.size() == 6);
  CHECK(at.back() - at.front() >= 1000);  // 300 devices at 200/s, the first batch free
}

TEST_CASE(
    "cancel: in-flight requests finish, the rest is skipped as cancelled, every device once") {
  emulator_config e;
  e.latency_fixed_ms = 20;
  const int n = 5000;
  temp_dir dir;
  e.listen = "127.0.0.1:0";
  e.tls = false;
  e.threads = 1;
  net::emulator emu(e);
  const std::string text = fmt::format(
      R"({{"endpoint":"{}","auth":{{"token_env":"HOME"}},"command":{{"type":2,"data":"[]"}},"devices":{{"file":"d.csv"}},"batch":{{"max_devices":20}},"connections":2,"rate":{{"requests_per_second":0}}}})",
      emu.url());
  auto parsed = parse_job(text, (dir.path() / "job.json").string());
  REQUIRE(parsed.job);
  std::istringstream in(csv_devices(n));
  device_stream devices(make_device_reader(device_format::csv, in));
  struct cancelling_sink : collecting_sink {
    net::rollout* r = nullptr;
    void on_result(const device_result& x) override {
      collecting_sink::on_result(x);
      if (results.size() == 200 && r) r->cancel();
    }
  } sink;
  net::rollout r(*parsed.job, devices, sink);
  sink.r = &r;
  const auto summary = r.run();
  CHECK(summary.state == job_state::cancelled);
  CHECK(summary.exit_code() == 4);
  std::set<std::uint64_t> seen;
  for (const auto& x : sink.results) CHECK(seen.insert(x.index).second);
  CHECK(seen.size() == static_cast<std::size_t>(n));
  CHECK(summary.count_of(outcome_reason::cancelled) > 4000);
  CHECK(summary.count_of(outcome_reason::accepted) >= 200);
  CHECK(summary.count_of(outcome_reason::accepted) ==
        emu.state().counter(emulator_counter::devices));
}

TEST_CASE("a second cancel cuts the requests in flight, their devices follow unknown_outcome") {
  for (const char* policy : {"retry", "fail"}) {
    CAPTURE(policy);
    emulator_config e;
    e.latency_fixed_ms = 3000;  // no answer comes before the cut
    e.listen = "127.0.0.1:0";
    e.tls = false;
    e.threads = 1;
    net::emulator emu(e);
    temp_dir dir;
    const std::string text = fmt::format(
        R"({{"endpoint":"{}","auth":{{"token_env":"HOME"}},"command":{{"type":2,"data":"[]"}},"devices":{{"file":"d.csv"}},"batch":{{"max_devices":10}},"connections":2,"rate":{{"requests_per_second":0}},"retry":{{"unknown_outcome":"{}"}}}})",
        emu.url(), policy);
    auto parsed = parse_job(text, (dir.path() / "job.json").string());
    REQUIRE(parsed.job);
    const int n = 300;
    std::istringstream in(csv_devices(n));
    device_stream devices(make_device_reader(device_format::csv, in));
    collecting_sink sink;
    std::set<std::uint64_t> written;
    net::rollout* self = nullptr;
    net::rollout_options options;
    options.before_send = [&](const batch& b) {
      for (std::size_t i = 0; i < b.size(); ++i) written.insert(b.index(i));
      if (written.size() == 20) {  // both connections have a request out: two signals
        self->cancel();
        self->cancel();
      }
      return std::string();
    };
    net::rollout r(*parsed.job, devices, sink, options);
    self = &r;
    const auto summary = r.run();
    CHECK(summary.state == job_state::cancelled);
    CHECK(summary.count_of(outcome_reason::accepted) == 0);  // nothing waited for
    std::set<std::uint64_t> seen;
    for (const auto& x : sink.results) {
      CHECK(seen.insert(x.index).second);
      if (written.count(x.index)) {
        CHECK(x.uncertain);  // written, never answered
        CHECK(x.reason == (std::string(policy) == "retry" ? outcome_reason::cancelled
                                                          : outcome_reason::transport_failed));
      } else {
        CHECK(!x.uncertain);
        CHECK(x.reason == outcome_reason::cancelled);
      }
    }
    CHECK(seen.size() == n);
    CHECK(written.size() == 20);
  }
}

TEST_CASE("an endpoint that is not there: the job fails before sending, no device burnt") {
  temp_dir dir;
  const std::string text =
      R"({"endpoint":"http://127.0.0.1:9","auth":{"token_env":"HOME"},"command":{"type":2,"data":"[]"},"devices":{"file":"d.csv"},"batch":{"max_devices":10},"connections":2,"retry":{"max_attempts":2,"base_delay_ms":1,"max_delay_ms":5}})";
  auto parsed = parse_job(text, (dir.path() / "job.json").string());
  REQUIRE(parsed.job);
  std::istringstream in(csv_devices(55));
  device_stream devices(make_device_reader(device_format::csv, in));
  collecting_sink sink;
  net::rollout r(*parsed.job, devices, sink);
  const auto summary = r.run();
  // One connection is tried (max_attempts times) before the fleet is read;
  // when it cannot be made, the job fails: every device skipped, resumable.
  CHECK(summary.state == job_state::failed);
  CHECK(summary.exit_code() == 1);
  CHECK(summary.count_of(outcome_reason::job_failed) == 55);
  CHECK(summary.count_of(device_status::failed) == 0);
  CHECK(summary.requests == 0);
  CHECK(sink.results.size() == 55);
  std::set<std::uint64_t> seen;
  for (const auto& res : sink.results) {
    CHECK(seen.insert(res.index).second);
    CHECK(res.attempts == 0);
    CHECK(!res.uncertain);  // never written: nothing can have reached a device
  }
  CHECK(seen.size() == 55);
  CHECK(r.failure().find("cannot connect to http://127.0.0.1:9") != std::string::npos);
  CHECK(r.failure().find("2 tries") != std::string::npos);
  CHECK(sink.results[0].msg.find("cannot connect") != std::string::npos);
}

TEST_CASE("abort: failures above the threshold stop the rollout, nothing sent after the verdict") {
  emulator_config e;
  e.device_failure_ratio = 0.5;
  const int n = 3000;
  auto o = run_against(
      e,
      R"("batch":{"max_devices":50},"connections":1,"rate":{"requests_per_second":0},"rollout":{"abort_failure_ratio":0.2,"abort_min_devices":300})",
      csv_devices(n));
  check_accounting(o, n);
  CHECK(o.summary.state == job_state::aborted);
  CHECK(o.summary.exit_code() == 3);
  CHECK(o.failure.find("aborted") != std::string::npos);
  const auto sent = o.summary.count_of(outcome_reason::accepted) +
                    o.summary.count_of(outcome_reason::device_failed);
  CHECK(sent >= 300);  // not before abort_min_devices
  CHECK(sent <=
        350);  // one connection, no pipelining: the verdict came with the batch that crossed 300
  CHECK(o.summary.count_of(outcome_reason::aborted) == n - sent);
  std::size_t executed = 0;
  for (const auto& [k, x] : o.record) executed += static_cast<std::size_t>(x.times);
  CHECK(executed == sent);  // no request started after the verdict
}

TEST_CASE("canary: nothing outside it is sent before its verdict, a bad canary stops the job") {
  const int n = 2000;
  {
    emulator_config e;
    e.device_failure_ratio = 0.5;
    auto o = run_against(
        e,
        R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0},"rollout":{"canary_devices":120,"abort_failure_ratio":0.2})",
        csv_devices(n));
    check_accounting(o, n);
    CHECK(o.summary.state == job_state::aborted);
    CHECK(o.failure.find("canary") != std::string::npos);
    // Only the canary was ever sent: about 120 devices, a sample of the list.
    CHECK(o.record.size() >= 80);
    CHECK(o.record.size() <= 160);
    std::size_t late = 0;
    for (const auto& r : o.results) {
      const bool sent = o.record.contains(r.product_key + "/" + r.device_key);
      CHECK(sent == (r.reason != outcome_reason::aborted));
      late += sent && r.index >= 1000;
    }
    CHECK(late >= 20);  // from the whole list, not its first lines
  }
  {
    emulator_config e;
    e.device_failure_ratio = 0.02;
    auto o = run_against(
        e,
        R"("batch":{"max_devices":50},"connections":3,"rate":{"requests_per_second":0},"rollout":{"canary_devices":120,"canary_wait_s":0.2,"abort_failure_ratio":0.2})",
        csv_devices(n));
    check_accounting(o, n);
    CHECK(o.summary.state == job_state::completed);
    // Every canary request came before every other request (request ids are
    // in arrival order): the canary's are the first requests, up to the gap.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> by_request;  // id, at ms
    for (const auto& [id, ms] : o.request_at_ms) by_request.emplace_back(id, ms);
    std::sort(by_request.begin(), by_request.end());
    std::size_t gap = 0;
    for (std::size_t i = 1; i < by_request.size(); ++i)
      if (by_request[i].second >= by_request[i - 1].second + 200) gap = i;
    REQUIRE(gap > 0);  // canary_wait_s: one gap of at least 200 ms
    CHECK(gap >= 2);   // about 120 devices in requests of 50
    CHECK(gap <= 4);
  }
}

TEST_CASE("ramp: the request rate counted at the emulator follows the ramp") {
  emulator_config e;
  const int n = 500;  // 50 requests of 10 devices
  auto o = run_against(
      e,
      R"("batch":{"max_devices":10},"connections":4,"rate":{"requests_per_second":80,"burst":1},"rollout":{"ramp":{"start_rps":10,"factor":2,"every_devices":50}})",
      csv_devices(n));
  check_accounting(o, n);
  std::vector<std::uint64_t> at;
  for (const auto& [id, ms] : o.request_at_ms) at.push_back(ms);
  std::sort(at.begin(), at.end());
  REQUIRE(at.size() == 50);
  // The first 5 requests go at 10/s (4 gaps of 100 ms); the last 20 at 80/s.
  CHECK(at[4] - at[0] >= 350);
  CHECK(at[49] - at[30] < 600);  // at 10/s these 19 gaps would take 1.9 s
  MESSAGE("first 5 requests over " << at[4] - at[0] << " ms, last 20 over " << at[49] - at[30]
                                   << " ms");
}

TEST_CASE("time window: nothing is sent after not_after, nothing before not_before") {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const auto iso = [](long long t) {
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  };
  {
    emulator_config e;
    const int n = 300;
    auto o =
        run_against(e,
                    fmt::format(R"("batch":{{"max_devices":10}},"rollout":{{"not_after":"{}"}})",
                                iso(now_s - 60)),
                    csv_devices(n));
    check_accounting(o, n);
    CHECK(o.summary.state == job_state::cancelled);
    CHECK(o.summary.count_of(outcome_reason::cancelled) == n);
    CHECK(o.record.empty());
    CHECK(o.failure.find("not_after") != std::string::npos);
  }
  {
    emulator_config e;
    const int n = 100;
    const auto start = std::chrono::system_clock::now();
    // From the clock now, not the test's start: the first part may have
    // taken a second on a loaded machine.
    const auto start_s =
        std::chrono::duration_cast<std::chrono::seconds>(start.time_since_epoch()).count();
    auto o = run_against(
        e,
        fmt::format(
            R"("batch":{{"max_devices":10}},"rate":{{"requests_per_second":0}},"rollout":{{"not_before":"{}"}})",
            iso(start_s + 2)),
        csv_devices(n));
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now() - start)
                            .count();
    check_accounting(o, n);
    CHECK(o.summary.count_of(outcome_reason::accepted) == n);
    CHECK(waited >= 1000);  // not_before is a whole second at least one second ahead
  }
}

TEST_CASE("gateway cap: never more in flight behind one gateway, other devices are not held up") {
  // 600 sub-devices behind 3 gateways, then 300 devices reached directly.
  std::string csv = "productKey,deviceKey,gatewayProductKey,gatewayDeviceKey\n";
  for (int i = 0; i < 900; ++i) {
    csv += i < 600 ? fmt::format("p1,86{:013},pgw,gw{}\n", i, i % 3)
                   : fmt::format("p1,86{:013},,\n", i);
  }
  for (int cap : {0, 20}) {
    CAPTURE(cap);
    emulator_config e;
    e.latency_fixed_ms = 30;
    auto o = run_against(
        e,
        fmt::format(
            R"("batch":{{"max_devices":50}},"connections":4,"pipeline_depth":2,"rate":{{"requests_per_second":0}},"rollout":{{"max_per_gateway":{}}})",
            cap),
        csv);
    check_accounting(o, 900);
    CHECK(o.summary.count_of(outcome_reason::accepted) == 900);
    MESSAGE("cap " << cap << ": peak in-flight devices per gateway " << o.peak_per_gateway);
    if (cap == 0) {
      CHECK(o.peak_per_gateway > 20);  // without a cap the load on a gateway is not held back
      continue;
    }
    CHECK(o.peak_per_gateway <= 20);
    CHECK(o.peak_per_gateway > 0);
    std::uint64_t last_direct = 0, last_behind = 0;
    for (const auto& r : o.results) {
      const auto id = o.record.at(r.product_key + "/" + r.device_key).requests.back();
      (r.index >= 600 ? last_direct : last_behind) =
          std::max(r.index >= 600 ? last_direct : last_behind, id);
    }
    CHECK(last_direct < last_behind);  // the direct devices, last in the input, were done first
  }
}

TEST_CASE("a token file that changes is picked up at once, not only after a refusal") {
  // The emulator takes "first" but not "third": a run that keeps using the
  // old token completes; one that reads the rotated file meets 5032 and,
  // with nothing fresher in the file, fails.
  emulator_config e;
  e.tokens = {"Bearer first"};
  e.latency_fixed_ms = 20;
  const int n = 400;
  auto o = run_against(
      e, R"("batch":{"max_devices":10},"connections":1,"rate":{"requests_per_second":0})",
      csv_devices(n), [](net::emulator& emu, const fs::path& token_file) {
        for (int i = 0; i < 2000 && emu.state().counter(emulator_counter::api_requests) < 3; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        std::ofstream(token_file.string() + ".new") << "Bearer third\n";
        fs::rename(token_file.string() + ".new", token_file);
      });
  check_accounting(o, n);
  CHECK(o.summary.state == job_state::failed);
  CHECK(o.counter(emulator_counter::code_5032) >= 1);
  CHECK(o.summary.count_of(outcome_reason::accepted) < n);
}

TEST_CASE("TLS: the engine refuses an untrusted certificate and a wrong host name") {
  const auto run_tls = [](emulator_config e, const std::string& host, const std::string& extra_ca,
                          const std::string& tls_members, bool system_store = true) {
    e.listen = "127.0.0.1:0";
    e.tls = true;
    e.threads = 1;
    net::emulator emu(e);
    temp_dir dir;
    const std::string text = fmt::format(
        R"({{"endpoint":"https://{}:{}","auth":{{"token_env":"HOME"}},"command":{{"type":2,"data":"[]"}},"devices":{{"file":"d.csv"}},"batch":{{"max_devices":10}},"retry":{{"max_attempts":2,"base_delay_ms":1,"max_delay_ms":5}}{}}})",
        host, emu.port(), tls_members);
    auto parsed = parse_job(text, (dir.path() / "job.json").string());
    REQUIRE(parsed.job);
    std::istringstream in(csv_devices(30));
    device_stream devices(make_device_reader(device_format::csv, in));
    collecting_sink sink;
    net::rollout_options options;
    options.extra_ca_pem = extra_ca;
    options.system_trust_store = system_store;
    net::rollout r(*parsed.job, devices, sink, options);
    const auto summary = r.run();
    return std::tuple{summary, std::move(sink.results),
                      emu.state().counter(emulator_counter::api_requests)};
  };
  {  // the system trust store does not know the emulator's certificate
    auto [summary, results, requests] = run_tls({}, "127.0.0.1", "", "");
    CHECK(summary.state == job_state::failed);  // at the first connection, before sending
    CHECK(summary.count_of(outcome_reason::job_failed) == 30);
    CHECK(requests == 0);
    REQUIRE(!results.empty());
    CHECK(results[0].msg.find("cannot connect") != std::string::npos);
    CHECK(results[0].msg.find("certificate verify failed") != std::string::npos);
    CHECK(!results[0].uncertain);
  }
  {  // trusted, but issued for another name than the one dialled
    const auto id = net::make_self_signed_identity({"localhost"}, {});  // no IP address in it
    temp_dir dir;
    std::ofstream(dir.path() / "c.pem") << id.cert_pem;
    std::ofstream(dir.path() / "k.pem") << id.key_pem;
    emulator_config e;
    e.cert_file = (dir.path() / "c.pem").string();
    e.key_file = (dir.path() / "k.pem").string();
    auto [summary, results, requests] = run_tls(e, "127.0.0.1", id.cert_pem, "");
    CHECK(summary.count_of(outcome_reason::job_failed) == 30);
    CHECK(requests == 0);
    // A certificate that names the address dialled is accepted (no name
    // resolution involved: both dial 127.0.0.1).
    const auto by_ip = net::make_self_signed_identity({}, {"127.0.0.1"});
    std::ofstream(dir.path() / "c.pem") << by_ip.cert_pem;
    std::ofstream(dir.path() / "k.pem") << by_ip.key_pem;
    auto [ok, results2, requests2] = run_tls(e, "127.0.0.1", by_ip.cert_pem, "");
    CHECK(ok.count_of(outcome_reason::accepted) == 30);
    CHECK(requests2 == 3);
    // Without the system store: the extra certificate alone is trusted...
    auto [alone, results3, requests3] = run_tls(e, "127.0.0.1", by_ip.cert_pem, "", false);
    CHECK(alone.count_of(outcome_reason::accepted) == 30);
    CHECK(requests3 == 3);
  }
  {  // ...and without it nothing is: no store is not "trust anything"
    auto [summary, results, requests] = run_tls({}, "127.0.0.1", "", "", false);
    CHECK(summary.count_of(outcome_reason::job_failed) == 30);
    CHECK(requests == 0);
  }
  {  // tls.verify false: the connection goes through (the command line warns on every run)
    auto [summary, results, requests] = run_tls({}, "127.0.0.1", "", R"(,"tls":{"verify":false})");
    CHECK(summary.count_of(outcome_reason::accepted) == 30);
    CHECK(requests == 3);
  }
}

namespace {

// A server that answers every request on loopback with the same bytes,
// whatever they are, then closes the connection: for answers no real
// server (and not the emulator) would give.
class raw_server {
 public:
  explicit raw_server(std::string answer) : answer_(std::move(answer)) {
    acceptor_.open(boost::asio::ip::tcp::v4());
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~raw_server() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);  // wakes accept()
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      boost::asio::ip::tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {  // the request's head, then its body
        const auto n = s.read_some(boost::asio::buffer(buf), ec);
        if (ec) break;
        in.append(buf, n);
      }
      const auto head_end = in.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      const auto cl = in.find("Content-Length: ");
      const std::size_t body = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
      while (in.size() < head_end + 4 + body) {
        const auto n = s.read_some(boost::asio::buffer(buf), ec);
        if (ec) break;
        in.append(buf, n);
      }
      ++requests_;
      boost::asio::write(s, boost::asio::buffer(answer_), ec);
      s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
  }
  std::string answer_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
};

}  // namespace

TEST_CASE("hostile answers: truncated, enormous, deeply nested, wrong types, not HTTP") {
  const std::string deep = std::string(20000, '[') + std::string(20000, ']');
  const std::string nested = R"({"code":200,"data":{"successList":)" + deep + "}}";
  auto with_length = [](const std::string& body) {
    return fmt::format("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
                       body.size(), body);
  };
  struct hostile {
    const char* what;
    std::string answer;
    const char* msg;  // in every device's result
  };
  const std::vector<hostile> cases = {
      {"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"code\":200,",
       "cut short"},
      {"a body over the limit (Content-Length)",
       "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + std::string(100000, ' '),
       "larger than the limit of 65536 bytes"},
      {"a body over the limit (chunked)",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
           [] {
             std::string chunks;
             for (int i = 0; i < 40; ++i) chunks += "1000\r\n" + std::string(4096, ' ') + "\r\n";
             return chunks + "0\r\n\r\n";
           }(),
       "larger than the limit of 65536 bytes"},
      {"an enormous header", "HTTP/1.1 200 OK\r\nX-Big: " + std::string(100000, 'x') + "\r\n\r\n",
       "header is larger"},
      {"deeply nested JSON", with_length(nested), "cannot be read"},
      {"wrong types", with_length(R"({"code":"200","msg":5,"data":{"successList":{}}})"),
       "cannot be read"},
      {"not HTTP", "SSH-2.0-OpenSSH_9.2\r\n\r\n", "not valid HTTP/1.1"},
  };
  for (const auto& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    raw_server server(c.answer);
    temp_dir dir;
    const std::string text = fmt::format(
        R"({{"endpoint":"http://127.0.0.1:{}","auth":{{"token_env":"HOME"}},"command":{{"type":2,"data":"[]"}},"devices":{{"file":"d.csv"}},"batch":{{"max_devices":10}},"connections":1,"timeouts":{{"request_ms":2000}},"retry":{{"max_attempts":2,"base_delay_ms":1,"max_delay_ms":5}}}})",
        server.port());
    auto parsed = parse_job(text, (dir.path() / "job.json").string());
    REQUIRE(parsed.job);
    std::istringstream in(csv_devices(25));
    device_stream devices(make_device_reader(device_format::csv, in));
    collecting_sink sink;
    net::rollout_options options;
    options.max_answer_bytes = 65536;
    net::rollout r(*parsed.job, devices, sink, options);
    const auto summary = r.run();
    // Every device once, failed as uncertain (the request was written; what
    // it did is unknown), with a message that says what was wrong.
    REQUIRE(sink.results.size() == 25);
    std::set<std::uint64_t> indices;
    for (const auto& res : sink.results) {
      indices.insert(res.index);
      CHECK(res.reason == outcome_reason::transport_failed);
      CHECK(res.uncertain);
      CHECK_MESSAGE(res.msg.find(c.msg) != std::string::npos, res.msg);
    }
    CHECK(indices.size() == 25);
    CHECK(summary.count_of(outcome_reason::transport_failed) == 25);
    CHECK(server.requests() == 6);  // 3 batches, 2 tries each
  }
}
