// The crash-safe session: several at once on a thread_pool(4) (label
// threads: the ThreadSanitizer suite runs it), each folder's results.ndjson
// holding every device exactly once; its refusals (a held folder, results
// without resume, an unknown retry reason, a cancel before the start) leave
// the folder as they found it; a resume of a finished rollout sends nothing.
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include <fleetcast/net/session/session.hpp>

#include "tests/net/loopback.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace fleetcast;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

struct rig {
  net::emulator emu;
  fs::path dir;
  rig()
      : emu(test::loopback_emulator()),
        dir(fs::temp_directory_path() / fmt::format("fleetcast-session-test-{}", ::getpid())) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~rig() { fs::remove_all(dir); }

  // A job of `n` devices held in memory (prefix: their keys), into dir/NAME.
  job job_of(std::size_t n, const std::string& name) const {
    std::string devices = "[";
    for (std::size_t i = 0; i < n; ++i)
      devices += fmt::format(R"({}{{"productKey":"p1","deviceKey":"{}-{}"}})", i ? "," : "",
                             name, i);
    devices += "]";
    const std::string text = fmt::format(
        R"({{"endpoint":"{}","auth":{{"token_env":"UNUSED"}},
             "command":{{"type":2,"data":"[{{\"switch\":true}}]"}},"devices":{},
             "batch":{{"max_devices":50}},"connections":2,"rate":{{"requests_per_second":0}},
             "output":{{"dir":"{}"}}}})",
        emu.url(), devices, (dir / name).string());
    auto parsed = parse_job(text, (dir / "job.json").string());
    REQUIRE_MESSAGE(parsed.job, (parsed.errors.empty() ? "" : parsed.errors[0].describe("job")));
    return *parsed.job;
  }
  net::session_options options(bool resume = false) const {
    net::session_options o;
    o.resume = resume;
    o.rollout.extra_ca_pem = emu.certificate_pem();
    o.rollout.system_trust_store = false;
    o.rollout.token = "Bearer session-test";
    return o;
  }
};

// A session's completion, kept.
struct completion {
  boost::system::error_code code;
  std::optional<net::session_outcome> out;
  auto handler() {
    return [this](boost::system::error_code ec, net::session_outcome o) {
      code = ec;
      out = std::move(o);
    };
  }
};

// Every index of 0..n-1 exactly once in the folder's results.ndjson: "" or what not.
std::string exactly_once(const fs::path& folder, std::size_t n) {
  std::ifstream in(folder / "results.ndjson");
  std::vector<int> seen(n);
  std::string line;
  while (std::getline(in, line)) {
    const auto at = line.find("\"index\":");
    if (at == std::string::npos) return "a line without an index: " + line;
    const auto i = std::strtoull(line.c_str() + at + 8, nullptr, 10);
    if (i >= n) return "an index beyond the list: " + line;
    ++seen[i];
  }
  for (std::size_t i = 0; i < n; ++i)
    if (seen[i] != 1) return fmt::format("device {} appears {} times", i, seen[i]);
  return {};
}

}  // namespace

TEST_CASE(
    "four sessions at once on a thread_pool(4): every folder holds every device once and its "
    "summary, and a resume of a finished rollout sends nothing") {
  rig r;
  constexpr std::size_t sessions = 4, n = 1500;
  std::vector<job> jobs;
  for (std::size_t k = 0; k < sessions; ++k) jobs.push_back(r.job_of(n, fmt::format("s{}", k)));
  asio::thread_pool pool(4);
  std::vector<std::unique_ptr<net::session>> runs;
  std::vector<completion> done(sessions);
  std::atomic<int> completed{0};
  for (std::size_t k = 0; k < sessions; ++k)
    runs.push_back(std::make_unique<net::session>(pool.get_executor(), jobs[k], r.options()));
  for (std::size_t k = 0; k < sessions; ++k) {
    runs[k]->async_run([&, k](boost::system::error_code ec, net::session_outcome o) {
      done[k].handler()(ec, std::move(o));
      ++completed;
    });
  }
  pool.join();  // returns once every session completed
  CHECK(completed == static_cast<int>(sessions));
  for (std::size_t k = 0; k < sessions; ++k) {
    CAPTURE(k);
    REQUIRE(done[k].out);
    CHECK(!done[k].code);
    const auto& s = done[k].out->summary;
    CHECK(s.state == job_state::completed);
    CHECK(s.count_of(device_status::succeeded) == n);
    CHECK(exactly_once(jobs[k].output_dir, n) == "");
    CHECK(fs::exists(fs::path(jobs[k].output_dir) / "summary.json"));
    CHECK(fs::exists(fs::path(jobs[k].output_dir) / "result.json"));
  }

  // The first folder again, resumed (its lock let go with its session):
  // everything kept, nothing sent.
  runs.clear();
  asio::thread_pool again(2);
  net::session resumed(again.get_executor(), jobs[0], r.options(true));
  std::string error;
  REQUIRE_MESSAGE(!resumed.open(error), error);
  CHECK(resumed.earlier().records == n);
  completion c;
  resumed.async_run(c.handler());
  again.join();
  REQUIRE(c.out);
  CHECK(!c.code);
  CHECK(c.out->summary.count_of(device_status::succeeded) == n);
  CHECK(c.out->summary.runs.size() == 2);
  CHECK(c.out->summary.runs.back().requests == 0);
  CHECK(exactly_once(jobs[0].output_dir, n) == "");
}

TEST_CASE("refusals leave the folder as they found it") {
  rig r;
  const job j = r.job_of(120, "held");
  asio::thread_pool pool(2);

  // A folder held by another session of this process (its lock).
  net::session first(pool.get_executor(), j, r.options());
  std::string error;
  REQUIRE_MESSAGE(!first.open(error), error);
  {
    net::session second(pool.get_executor(), j, r.options());
    CHECK(second.open(error) == net::session_errc::folder_refused);
    CHECK_MESSAGE(error.find(j.output_dir) != std::string::npos, error);
  }
  completion c;
  first.async_run(c.handler());
  pool.join();
  REQUIRE(c.out);
  CHECK(exactly_once(j.output_dir, 120) == "");

  // Results there, and no resume: refused; nothing of the folder changes.
  const auto before = fs::file_size(fs::path(j.output_dir) / "results.ndjson");
  asio::thread_pool pool2(2);
  {
    net::session fresh(pool2.get_executor(), j, r.options());
    completion refused;
    fresh.async_run(refused.handler());
    pool2.join();
    CHECK(refused.code == net::session_errc::folder_refused);
    REQUIRE(refused.out);
    CHECK(!refused.out->started());
  }
  CHECK(fs::file_size(fs::path(j.output_dir) / "results.ndjson") == before);

  // An unknown reason to retry.
  auto o = r.options(true);
  o.retry_failed = "no_such_reason";
  asio::thread_pool pool3(1);
  net::session retry(pool3.get_executor(), j, std::move(o));
  CHECK(retry.open(error) == net::session_errc::invalid_request);
  CHECK_MESSAGE(error.find("no_such_reason") != std::string::npos, error);
}

TEST_CASE("a cancel before the start: stopped, nothing sent, the folder it made removed") {
  rig r;
  const job j = r.job_of(100, "cancelled");
  asio::thread_pool pool(2);
  net::session s(pool.get_executor(), j, r.options());
  s.cancel();
  completion c;
  s.async_run(c.handler());
  pool.join();
  CHECK(c.code == net::session_errc::stopped);
  REQUIRE(c.out);
  CHECK(!c.out->started());
  CHECK(!fs::exists(j.output_dir));
  CHECK(r.emu.state().stats_json().find("\"requests\":0") != std::string::npos);
}

TEST_CASE("record_early_cancel: a cancel before the start still puts every device on record") {
  rig r;
  const job j = r.job_of(130, "on-record");
  asio::thread_pool pool(2);
  auto o = r.options();
  o.record_early_cancel = true;
  net::session s(pool.get_executor(), j, std::move(o));
  s.cancel();
  completion c;
  s.async_run(c.handler());
  pool.join();
  CHECK(!c.code);
  REQUIRE(c.out);
  CHECK(c.out->summary.state == job_state::cancelled);
  CHECK(c.out->summary.count_of(device_status::skipped) == 130);
  CHECK(exactly_once(j.output_dir, 130) == "");
  CHECK(r.emu.state().stats_json().find("\"requests\":0") != std::string::npos);
}
