// Embedding fleetcast: one command to a fleet from your own C++ service, on
// your own executor (here a thread pool: the session serialises its own
// work), with the token from your own secret store (here held in memory)
// and the devices from memory, into a crash-safe output folder.
//
// What it shows: a first run is killed (SIGKILL, as a crash or an OOM kill
// would) while it sends; a second, with `resume`, continues it: what has a
// final result is not sent again, what the first may have sent is marked
// uncertain, and results.ndjson ends with every device exactly once (the
// example checks it, line by line). A local emulator stands in for the
// platform; point the endpoint at the real one (and drop extra_ca_pem) in
// production. docs/library.md is the reference.
//
// usage: embed_example            the demonstration (exit 0 when it holds)
//        embed_example --first URL CA_FILE DIR    the run that is killed
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include <fleetcast/net/session/session.hpp>

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr int fleet_size = 300;

// The job, built in code: every setting starts at its documented default.
std::optional<fleetcast::job> make_job(const std::string& url, const std::string& dir) {
  fleetcast::job job;
  job.name = "embedded-example";
  if (auto problem = fleetcast::parse_endpoint(url, job.endpoint)) {
    std::cerr << "endpoint: " << *problem << '\n';
    return std::nullopt;
  }
  job.endpoint.url = url;
  job.auth.kind = fleetcast::auth_config::source::token_env;  // for validate(); the token
  job.auth.token_env = "UNUSED";                              // comes from options.token
  job.cmd.type = 2;                                           // a property command
  job.cmd.data = R"([{"switch":true}])";
  job.batch.max_devices = 10;
  job.connections = 1;
  // The devices from memory: a JSON array (a file, CSV or NDJSON, as well).
  std::string devices = "[";
  for (int i = 0; i < fleet_size; ++i)
    devices += (i ? "," : "") + std::string(R"({"productKey":"p1","deviceKey":"lamp-)") +
               std::to_string(i) + "\"}";
  job.devices.file.reset();
  job.devices.format = fleetcast::device_format::json_array;
  job.devices.inline_json = devices + "]";
  job.output_dir = dir + "/out";  // results.ndjson, the journal, rollout.json, summary.json
  // The job file's rules, with its messages and the reference page's codes.
  if (const auto errors = fleetcast::validate(job); !errors.empty()) {
    for (const auto& e : errors) std::cerr << e.describe("job") << '\n';
    return std::nullopt;
  }
  return job;
}

// One session on a thread pool, to its end. Its outcome, or none.
std::optional<fleetcast::net::session_outcome> run_session(const fleetcast::job& job,
                                                           const std::string& ca_pem,
                                                           bool resume) {
  fleetcast::net::session_options options;
  options.resume = resume;
  options.rollout.extra_ca_pem = ca_pem;  // trust the local emulator
  options.rollout.system_trust_store = false;
  options.rollout.token = "Bearer example-token";  // or rollout.token_provider: asked when needed
  // Each device's result as it comes would be options.rollout.on_progress's
  // counts; the results themselves are in results.ndjson, synced.
  boost::asio::thread_pool pool(4);
  fleetcast::net::session session(pool.get_executor(), job, std::move(options));
  std::optional<fleetcast::net::session_outcome> out;
  // Bind a cancellation slot to the handler to stop it
  // (asio::bind_cancellation_slot), or co_await it with
  // asio::as_tuple(asio::use_awaitable).
  session.async_run([&out](boost::system::error_code ec, fleetcast::net::session_outcome o) {
    if (ec) {  // nothing was sent: what could not be used, and its kind
      std::cerr << "not started: " << o.error << " (" << ec.message() << ")\n";
      return;
    }
    out = std::move(o);
  });
  pool.join();  // the pool has work until the completion handler ran
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t lines_in(const std::string& path) {
  const auto text = read_file(path);
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// results.ndjson holds every device exactly once: "" when it does, else
// what not. `uncertain`: the devices marked maybe sent twice.
std::string check_exactly_once(const std::string& path, int& uncertain) {
  std::vector<int> seen(fleet_size, 0);
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    uncertain += line.find("\"uncertain\":true") != std::string::npos;
    const auto at = line.find("\"index\":");
    if (at == std::string::npos) return "a line without an index: " + line;
    const int index = std::atoi(line.c_str() + at + 8);
    if (index < 0 || index >= fleet_size) return "an index out of the list: " + line;
    ++seen[static_cast<std::size_t>(index)];
  }
  for (int i = 0; i < fleet_size; ++i) {
    if (seen[static_cast<std::size_t>(i)] != 1)
      return "device " + std::to_string(i) + " appears " +
             std::to_string(seen[static_cast<std::size_t>(i)]) + " times";
  }
  return {};
}

// The demonstration: the emulator here, the first run in a child process
// killed once it has recorded a third of the fleet, then the resume here.
int demonstrate(const char* self) {
  fleetcast::emulator_config platform;
  platform.listen = "127.0.0.1:0";
  platform.threads = 1;
  platform.latency_fixed_ms = 20;  // slow enough to be killed mid-run
  fleetcast::net::emulator emulator(platform);
  char dir_template[] = "/tmp/fleetcast-embed-XXXXXX";
  const char* made = ::mkdtemp(dir_template);
  if (!made) {
    std::cerr << "mkdtemp failed\n";
    return 1;
  }
  const std::string dir = made, ca_file = dir + "/emulator.pem";
  std::ofstream(ca_file) << emulator.certificate_pem();
  const auto job = make_job(emulator.url(), dir);
  if (!job) return 2;

  const pid_t child = ::fork();
  if (child == 0) {
    ::execl(self, self, "--first", emulator.url().c_str(), ca_file.c_str(), dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Waits for the moment to kill (30 s at most): a third of the fleet
  // recorded and a request on its way (journalled, its results not yet).
  const std::string results = job->output_dir + "/results.ndjson";
  const std::string journal = job->output_dir + "/sent.journal";
  const auto in_flight = [&] {
    const auto recorded = lines_in(results);
    return recorded >= fleet_size / 3 &&
           lines_in(journal) * job->batch.max_devices > recorded;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!in_flight()) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "the first run never had a request on its way after " << fleet_size / 3
                << " results\n";
      ::kill(child, SIGKILL);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  // What the killed run had on its way: journalled, no result recorded.
  const auto on_its_way = lines_in(journal) * job->batch.max_devices - lines_in(results);
  std::cout << "first run killed with " << lines_in(results) << " of " << fleet_size
            << " results recorded and " << on_its_way << " devices on their way\n";

  const auto outcome = run_session(*job, emulator.certificate_pem(), true);
  if (!outcome) return 1;
  const auto& s = outcome->summary;
  std::cout << "resumed: " << s.count_of(fleetcast::device_status::succeeded) << " of "
            << s.records << " devices succeeded over " << s.runs.size() << " runs\n";
  int uncertain = 0;
  if (const auto problem = check_exactly_once(results, uncertain); !problem.empty()) {
    std::cerr << "results.ndjson: " << problem << '\n';
    return 1;
  }
  std::cout << "results.ndjson: every device exactly once, " << uncertain
            << " marked uncertain (the killed run may have sent them)\n";
  if (static_cast<std::size_t>(uncertain) != on_its_way) {
    std::cerr << "expected the " << on_its_way << " devices on their way to be uncertain\n";
    return 1;
  }
  std::filesystem::remove_all(dir);
  return s.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--first") {
    const auto job = make_job(argv[2], argv[4]);
    if (!job) return 2;
    const auto outcome = run_session(*job, read_file(argv[3]), false);
    return outcome ? outcome->summary.exit_code() : 2;
  }
  return demonstrate(argv[0]);
}
