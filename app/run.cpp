// The run command (see run.hpp): job and device list in; results.ndjson as
// results come, a send journal (so that --resume knows what may already have
// been sent), summary.json and result.json at the end; a progress line.
#include "app/run.hpp"

#include "app/job_files.hpp"
#include "core/job_parser.hpp"
#include "core/result_log.hpp"
#include "net/emulator.hpp"
#include "net/rollout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fleetcast::app {
namespace {

namespace fs = std::filesystem;

// A growable set of record indices, one bit each.
class index_set {
 public:
  void insert(std::uint64_t i) {
    if (i / 64 >= bits_.size()) bits_.resize(i / 64 + 1 + bits_.size() / 2, 0);
    bits_[i / 64] |= 1ULL << (i % 64);
  }
  bool contains(std::uint64_t i) const {
    return i / 64 < bits_.size() && (bits_[i / 64] >> (i % 64) & 1);
  }

 private:
  std::vector<std::uint64_t> bits_;
};

// An append-only file written with write(2): what is written survives a
// crash of the process (SIGKILL) even without fsync.
class append_file {
 public:
  explicit append_file(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  ~append_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// results.ndjson: lines buffered per batch, written as the batch completes.
class results_writer final : public result_sink {
 public:
  explicit results_writer(const std::string& path) : file_(path) {}
  void on_result(const device_result& r) override {
    append_result_line(buf_, r);
    if (buf_.size() > (1 << 20)) flush();
  }
  void flush() override {
    if (buf_.empty()) return;
    file_.write(buf_);
    buf_.clear();
  }

 private:
  append_file file_;
  std::string buf_;
};

// Blocks SIGINT and SIGTERM for every thread started from here on; a watcher
// thread turns the first one into a graceful cancel.
class stop_signals {
 public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  void watch(net::rollout& r) {
    thread_ = std::thread([this, &r] {
      const timespec tick{0, 200'000'000};
      while (!done_) {
        const int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
          signal_ = sig;
          r.cancel();
          return;
        }
      }
    });
  }
  ~stop_signals() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int signal() const { return signal_; }

 private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> signal_{0};
};

std::string rate_text(double per_s) {
  return per_s >= 1e6   ? fmt::format("{:.2f}M", per_s / 1e6)
         : per_s >= 1e3 ? fmt::format("{:.1f}k", per_s / 1e3)
                        : fmt::format("{:.0f}", per_s);
}

}  // namespace

int run_job(const std::string& job_file, const run_flags& flags) {
  auto loaded = load_job(job_file);
  if (!loaded) return 2;
  job j = std::move(*loaded);
  std::string error;

  stop_signals signals;  // before any thread starts (the emulator's included)
  std::optional<net::emulator> emulator;
  net::rollout_options options;
  if (flags.emulate) {
    emulator_config ec;
    if (!flags.emulator_config.empty()) {
      std::string etext;
      if (!read_text_file(flags.emulator_config, etext, error)) {
        fmt::print(stderr, "fleetcast: {}\n", error);
        return 2;
      }
      auto ep = parse_emulator_config(etext, flags.emulator_config);
      if (!ep.config) {
        for (const auto& e : ep.errors)
          fmt::print(stderr, "fleetcast: {}: {}\n", flags.emulator_config, e);
        return 2;
      }
      ec = std::move(*ep.config);
    } else {
      ec.threads = 1;  // leave the other core to the engine
    }
    ec.listen = "127.0.0.1:0";
    try {
      emulator.emplace(ec);
    } catch (const std::exception& e) {
      fmt::print(stderr, "fleetcast: --emulate: {}\n", e.what());
      return 2;
    }
    parse_endpoint(emulator->url(), j.endpoint);
    options.extra_ca_pem = emulator->certificate_pem();
    fmt::print(stderr, "fleetcast: rehearsing against the emulator at {} (list limit {})\n",
               emulator->url(), ec.max_devices);
  }
  if (j.endpoint.tls && !j.tls.verify) {
    fmt::print(stderr,
               "fleetcast: WARNING: tls.verify is false: the server's certificate is NOT checked; "
               "anyone on the path can read the token and the commands\n");
  }

  opened_devices devices;
  if (!open_devices(j, devices, error)) {
    fmt::print(stderr, "fleetcast: {}: {}\n", job_file, error);
    return 2;
  }

  // The output folder: results so far (resume), the journal of sends.
  std::error_code fec;
  fs::create_directories(j.output_dir, fec);
  if (fec) {
    fmt::print(stderr, "fleetcast: output.dir: {}: {}\n", j.output_dir, fec.message());
    return 2;
  }
  const auto results_path = (fs::path(j.output_dir) / "results.ndjson").string();
  const auto journal_path = (fs::path(j.output_dir) / "sent.journal").string();
  index_set done, maybe_sent;
  run_summary before;  // counts of an earlier run (resume)
  if (fs::exists(results_path) && !flags.resume) {
    fmt::print(stderr,
               "fleetcast: {} already holds results: continue it with --resume, or set another "
               "output.dir\n",
               results_path);
    return 2;
  }
  if (flags.resume && fs::exists(results_path)) {
    // Final results stay; devices skipped because the run stopped (cancelled,
    // aborted) or the job failed (e.g. a refused token) are sent again, so
    // their lines go: results.ndjson keeps one line per device.
    const auto kept_path = results_path + ".resume";
    {
      std::ifstream in(results_path, std::ios::binary);
      std::ofstream kept(kept_path, std::ios::binary | std::ios::trunc);
      result_log_reader reader(in);
      device_result r;
      std::string line;
      while (reader.next(r)) {
        if (r.reason == outcome_reason::cancelled || r.reason == outcome_reason::job_failed)
          continue;
        if (done.contains(r.index)) continue;
        before.count(r);
        done.insert(r.index);
        line.clear();
        append_result_line(line, r);
        kept << line;
      }
      if (!reader.error().empty()) {
        fmt::print(stderr, "fleetcast: {}: {}; cannot resume from it\n", results_path,
                   reader.error());
        return 2;
      }
      if (!kept) {
        fmt::print(stderr, "fleetcast: {}: cannot write\n", kept_path);
        return 2;
      }
    }
    fs::rename(kept_path, results_path, fec);
    if (fec) {
      fmt::print(stderr, "fleetcast: {}: {}\n", results_path, fec.message());
      return 2;
    }
    std::ifstream journal(journal_path);
    std::string line;
    while (std::getline(journal, line)) {  // indices, comma-separated
      const char* p = line.data();
      const char* const end = p + line.size();
      while (p < end) {
        std::uint64_t index = 0;
        const auto [next, ec] = std::from_chars(p, end, index);
        if (ec == std::errc()) maybe_sent.insert(index);
        p = std::find(next, end, ',') + 1;
      }
    }
    fmt::print(stderr, "fleetcast: resuming: {} records already have a result\n", before.records);
  }

  std::optional<results_writer> results;
  std::optional<append_file> journal;
  try {
    results.emplace(results_path);
    journal.emplace(journal_path);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fleetcast: {}\n", e.what());
    return 2;
  }
  options.already_done = [&](std::uint64_t i) { return done.contains(i); };
  options.maybe_sent = [&](std::uint64_t i) { return maybe_sent.contains(i); };
  std::string journal_line;
  options.before_send = [&](const batch& b) {
    journal_line.clear();
    for (std::size_t i = 0; i < b.size(); ++i) {
      fmt::format_to(std::back_inserter(journal_line), "{}{}", i ? "," : "", b.index(i));
    }
    journal_line += '\n';
    journal->write(journal_line);
  };
  const bool terminal = isatty(STDERR_FILENO);
  double last_line_s = -10;
  options.on_progress = [&](const net::rollout_progress& p) {
    const double rate = p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0;
    std::string total =
        p.input_complete ? fmt::format("{}", p.records) : fmt::format("{}+", p.records);
    std::string eta;
    if (p.input_complete && rate > 0 && p.records > p.done) {
      eta = fmt::format(", ETA {:.0f} s", static_cast<double>(p.records - p.done) / rate);
    }
    const auto line = fmt::format(
        "{} of {} devices done, {} devices/s, {} failed, {} skipped, {} requests, {} retries, "
        "batch {}{}",
        before.records + p.done, total, rate_text(rate), p.failed, p.skipped, p.requests, p.retries,
        p.batch_size, eta);
    if (terminal) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else if (p.elapsed_s - last_line_s >= 5) {
      fmt::print(stderr, "fleetcast: {}\n", line);
      last_line_s = p.elapsed_s;
    }
  };

  net::rollout rollout(j, *devices.stream, *results, options);
  signals.watch(rollout);
  run_summary summary;
  try {
    summary = rollout.run();
  } catch (const std::exception& e) {
    if (terminal) fmt::print(stderr, "\n");
    fmt::print(stderr, "fleetcast: {}\n", e.what());
    return 2;
  }
  results->flush();
  if (terminal) fmt::print(stderr, "\n");

  // Totals over this run and the ones it resumed.
  summary.add_counts(before);

  const auto dir = fs::path(j.output_dir);
  {
    std::ofstream out(dir / "summary.json", std::ios::binary | std::ios::trunc);
    out << summary.to_json();
  }
  {
    std::ifstream in(results_path, std::ios::binary);
    std::fstream successes(dir / ".successes.part",
                           std::ios::in | std::ios::out | std::ios::trunc | std::ios::binary);
    std::fstream failures(dir / ".failures.part",
                          std::ios::in | std::ios::out | std::ios::trunc | std::ios::binary);
    std::ofstream out(dir / "result.json", std::ios::binary | std::ios::trunc);
    const auto problem = write_merged_result(in, out, successes, failures);
    if (!problem.empty()) fmt::print(stderr, "fleetcast: result.json: {}\n", problem);
  }
  fs::remove(dir / ".successes.part", fec);
  fs::remove(dir / ".failures.part", fec);

  if (!rollout.failure().empty())
    fmt::print(stderr, "fleetcast: the job failed: {}\n", rollout.failure());
  if (signals.signal()) {
    fmt::print(stderr, "fleetcast: stopped by {}; continue with: fleetcast run {} --resume\n",
               signals.signal() == SIGINT ? "SIGINT" : "SIGTERM", job_file);
  }
  fmt::print(
      "fleetcast: {} \"{}\": {} devices: {} succeeded, {} failed, {} skipped; {} requests, {} "
      "retries, {:.1f} s, {} devices/s, batch size {}; outputs in {}\n",
      to_string(summary.state), summary.name, summary.records,
      summary.count_of(device_status::succeeded), summary.count_of(device_status::failed),
      summary.count_of(device_status::skipped), summary.requests, summary.retries,
      summary.elapsed_s, rate_text(summary.devices_per_second()), summary.batch_size, j.output_dir);
  return summary.exit_code();
}

}  // namespace fleetcast::app
