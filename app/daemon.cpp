// The daemon (see daemon.hpp). One supervisor thread owns the spool: it
// claims jobs, starts each on a thread of its own (one rollout, its own
// io_context), reaps them and moves their folders. Jobs against one endpoint
// share a connection budget and, per endpoint and token source, one fair
// request-rate limit (core/fair_rate_gate.hpp). The admin port and the job
// threads read shared state under `jobs_mutex` and `metrics_mutex`.
#include "app/daemon.hpp"

#include "app/daemon_log.hpp"
#include "app/job_files.hpp"
#include "app/job_output.hpp"
#include "app/sd_notify.hpp"
#include "core/admin_access.hpp"
#include "core/daemon_config.hpp"
#include "core/fair_rate_gate.hpp"
#include "core/job_parser.hpp"
#include "core/json_escape.hpp"
#include "core/progress_view.hpp"
#include "core/prometheus.hpp"
#include "core/shard.hpp"
#include "core/spool_rules.hpp"
#include "net/admin_server.hpp"
#include "net/rollout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace fleetcast::app {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// ------------------------------------------------------------------ files

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A job name that is safe as a folder name and a metrics label: the default
// name `fleetcast run` gives a job file (core's job_name_from_stem).
std::string clean_name(std::string_view stem) {
  std::string name = job_name_from_stem(stem);
  if (name.empty() || name[0] == '.') name.insert(0, "job");
  return name;
}

// A job file ready to be claimed: NAME.json, not hidden.
bool is_job_file(const fs::directory_entry& e) {
  const auto name = e.path().filename().string();
  std::error_code ec;
  return e.is_regular_file(ec) && !name.starts_with('.') && name.size() > 5 &&
         name.ends_with(".json");
}

bool write_file(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// ------------------------------------------------------------------ jobs

// One endpoint account (endpoint and token source): its fair rate limit.
struct account {
  std::mutex mutex;
  fair_rate_gate gate;
  account(double rate, double burst) : gate(rate, burst) {}
};

struct connection_budget {
  std::uint32_t capacity = 0;
  std::uint32_t in_use = 0;
};

enum class job_phase { waiting, running, finished };

struct daemon_job {
  std::string name;
  fs::path dir;  // running/<name>/
  job spec;
  opened_devices devices;
  job_output output;
  std::unique_ptr<net::rollout> rollout;
  std::thread thread;
  std::string endpoint_url;
  // Set by the supervisor, read by the admin port too.
  std::atomic<std::uint32_t> connections{0};
  account* acct = nullptr;
  std::uint32_t member = 0;
  std::atomic<bool> cancel_by_user{false};
  std::atomic<bool> cancel_by_drain{false};
  std::atomic<bool> done{false};
  // Written by the job's thread, read under jobs_mutex.
  job_phase phase = job_phase::waiting;
  net::rollout_progress progress;
  run_summary summary;
  std::string startup_error;
  steady::time_point started = steady::now();
  std::string resumed_from;           // done or failed, when an operator asked for a resume
  std::uint64_t estimated_total = 0;  // the list's records, estimated (0: unknown)
  progress_view view;                 // the current rate (under jobs_mutex)
  steady::time_point progress_logged = steady::now();
  // Done, total, exact, percent, rate and ETA as /jobs and the log give them.
  struct figures {
    std::uint64_t done = 0, total = 0;
    bool exact = false;
    double percent = 0, rate = 0, eta_s = -1;
  };
  figures now(std::uint64_t earlier) const {
    figures f;
    f.done = earlier + progress.done;
    f.exact = progress.input_complete;
    f.total = f.exact ? progress.records : std::max(estimated_total, progress.records);
    f.rate = view.current_rate();
    if (f.total > 0) {
      f.percent = std::min(f.exact ? 100.0 : 99.0,
                           100.0 * static_cast<double>(f.done) / static_cast<double>(f.total));
      if (f.rate > 0 && f.total > f.done) f.eta_s = static_cast<double>(f.total - f.done) / f.rate;
    }
    return f;
  }
};

// In a job's folder while a --retry-failed request waits to be applied: the
// reasons (a crash between the request and the job's start keeps them).
constexpr std::string_view retry_marker = "retry-failed.request";

struct finished_job {
  std::string name, state, where, reason;
  run_summary summary;
};

std::string_view auth_identity(const auth_config& a) {
  switch (a.kind) {
    case auth_config::source::token_file:
      return a.token_file;
    case auth_config::source::token_env:
      return a.token_env;
    case auth_config::source::token_command:
      return a.token_command.empty() ? std::string_view{} : a.token_command.front();
  }
  return {};
}

class daemon_service {
 public:
  daemon_service(fs::path spool, std::string config_file, std::optional<shard_spec> shard)
      : spool_(std::move(spool)), config_file_(std::move(config_file)), shard_(shard) {}

  int run();

 private:
  // Set-up.
  bool load_config(daemon_config& out, bool at_start);
  bool prepare_spool();
  void recover();
  // The loop's work.
  void handle_signal(int sig);
  void scan_cancels();
  void scan_resumes();
  void log_progress();
  job_folder_facts facts_of(const std::string& name, bool count_pending);
  bool take_resume(const std::string& name, const resume_request& request);
  void claim_incoming();
  bool refuse_if_invalid(const fs::path& path, fs::file_time_type when);
  void start_waiting();
  bool start(const std::shared_ptr<daemon_job>& dj);
  void reap();
  void settle(daemon_job& dj);
  void move_to(const fs::path& from, const std::string& where, const std::string& name,
               std::string_view reason);
  void fail_invalid(const std::string& name, const fs::path& dir, std::string_view reason);
  void wake();
  std::size_t running_jobs() const;
  // Admin.
  net::admin_response admin(const net::admin_request& req);
  net::admin_response job_action(std::string_view method, std::string_view rest);
  std::string metrics_text();
  std::string jobs_json();

  fs::path spool_;
  std::string config_file_;
  std::optional<shard_spec> shard_;
  daemon_config config_;
  json_log log_;

  int event_fd_ = -1;
  int signal_fd_ = -1;
  int inotify_fd_ = -1;
  int lock_fd_ = -1;
  std::atomic<bool> draining_{false};  // read by the admin port
  std::atomic<bool> ready_{false};     // the spool is recovered: jobs are taken
  std::string admin_token_;            // admin_token_file's token; set before the port opens
  service_notifier notifier_;          // systemd's Type=notify (no-op without NOTIFY_SOCKET)
  steady::time_point watchdog_due_{};
  steady::time_point drain_deadline_{};
  steady::time_point epoch_ = steady::now();

  mutable std::mutex jobs_mutex_;
  std::vector<std::shared_ptr<daemon_job>> jobs_;  // waiting and running
  std::deque<finished_job> finished_;              // the last 100, for /jobs
  std::map<std::string, std::unique_ptr<account>> accounts_;
  std::map<std::string, connection_budget> budgets_;  // by endpoint URL (supervisor only)
  std::set<std::pair<std::string, fs::file_time_type>> known_valid_;  // waiting in incoming/

  std::mutex metrics_mutex_;
  std::map<std::string, std::uint64_t> requests_by_outcome_;
  std::map<std::string, std::uint64_t> jobs_finished_by_state_;
  std::array<std::uint64_t, 3> devices_finished_{};  // by status, of jobs that ended
  std::uint64_t retries_finished_ = 0;
  double rate_wait_finished_s_ = 0;
  prometheus::histogram latency_{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  prometheus::histogram batch_sizes_{{1, 10, 25, 50, 100, 200, 300, 400, 500, 1000}};
};

bool daemon_service::load_config(daemon_config& out, bool at_start) {
  if (config_file_.empty()) {
    out = daemon_config{};
    return true;
  }
  std::string text, error;
  if (!read_text_file(config_file_, text, error)) {
    if (at_start) fmt::print(stderr, "fleetcast daemon: {}\n", error);
    log_.write("error", "", "config_rejected",
               details().str("file", config_file_).str("error", error));
    return false;
  }
  auto parsed = parse_daemon_config(text);
  if (!parsed.config) {
    for (const auto& e : parsed.errors) {
      if (at_start) fmt::print(stderr, "fleetcast daemon: {}: {}\n", config_file_, e);
      log_.write("error", "", "config_rejected",
                 details().str("file", config_file_).str("error", e));
    }
    return false;
  }
  out = std::move(*parsed.config);
  return true;
}

bool daemon_service::prepare_spool() {
  for (const char* sub :
       {"incoming", "running", "done", "failed", "cancel", "resume", "retry-failed"}) {
    std::error_code ec;
    fs::create_directories(spool_ / sub, ec);
    if (ec) {
      fmt::print(stderr, "fleetcast daemon: {}: {}\n", (spool_ / sub).string(), ec.message());
      return false;
    }
  }
  const auto lock_path = spool_ / "daemon.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    fmt::print(stderr, "fleetcast daemon: {}: {}\n", lock_path.string(),
               errno == EWOULDBLOCK ? "another daemon serves this spool" : std::strerror(errno));
    return false;
  }
  return true;
}

void daemon_service::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
}

std::size_t daemon_service::running_jobs() const {
  std::lock_guard lock(jobs_mutex_);
  return static_cast<std::size_t>(std::count_if(
      jobs_.begin(), jobs_.end(), [](const auto& j) { return j->phase != job_phase::waiting; }));
}

// Jobs a crash left in running/: claimed files not yet moved into their
// folder are moved in; every folder becomes a waiting job (resumed).
void daemon_service::recover() {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(spool_ / "running", ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    if (p.extension() == ".json" && fs::is_regular_file(p)) {
      const auto dir = p.parent_path() / p.stem();
      fs::create_directories(dir, ec);
      fs::rename(p, dir / "job.json", ec);
    }
  }
  for (const auto& e : fs::directory_iterator(spool_ / "running", ec)) {
    if (!e.is_directory()) continue;
    const auto name = e.path().filename().string();
    if (!fs::exists(e.path() / "job.json")) {
      fail_invalid(name, e.path(), "the job file is missing from its running/ folder");
      continue;
    }
    auto dj = std::make_shared<daemon_job>();
    dj->name = name;
    dj->dir = e.path();
    log_.write("info", name, "job_recovered",
               details().str("folder", dj->dir.string()).str("action", "resume"));
    std::lock_guard lock(jobs_mutex_);
    jobs_.push_back(std::move(dj));
  }
}

// True when the job file at `path` is invalid (it is then claimed like any
// other and fails at its start, with every problem in reason.txt).
bool daemon_service::refuse_if_invalid(const fs::path& path, fs::file_time_type when) {
  const auto key = std::make_pair(path.string(), when);
  if (known_valid_.count(key)) return false;
  std::string text, error;
  if (!read_text_file(path.string(), text, error)) return false;  // gone: taken by someone else
  const auto as_dropped = (spool_ / "incoming" / path.filename()).string();
  if (parse_job(text, as_dropped).job) {
    if (known_valid_.size() > 10'000) known_valid_.clear();
    known_valid_.insert(key);
    return false;
  }
  return true;
}

void daemon_service::claim_incoming() {
  if (draining_) return;
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  for (const auto& e : fs::directory_iterator(spool_ / "incoming", ec)) {
    if (is_job_file(e)) files.emplace_back(e.last_write_time(ec), e.path());
  }
  std::sort(files.begin(), files.end());  // oldest first
  for (const auto& [when, path] : files) {
    bool full;
    {
      std::lock_guard lock(jobs_mutex_);
      full = jobs_.size() >= config_.max_jobs;
    }
    // A job that waits for a slot is checked at once: an invalid one is
    // refused now (moved to failed/), not after the jobs ahead of it.
    if (full && !refuse_if_invalid(path, when)) continue;
    const auto base = clean_name(path.stem().string());
    std::string name = base;
    for (int n = 2;
         fs::exists(spool_ / "running" / name) || fs::exists(spool_ / "done" / name) ||
         fs::exists(spool_ / "failed" / name) || fs::exists(spool_ / "running" / (name + ".json"));
         ++n) {
      name = fmt::format("{}.{}", base, n);
    }
    const auto claimed = spool_ / "running" / (name + ".json");
    fs::rename(path, claimed, ec);  // atomic: one claimant wins
    if (ec) continue;
    const auto dir = spool_ / "running" / name;
    fs::create_directories(dir, ec);
    if (!ec) fs::rename(claimed, dir / "job.json", ec);
    if (ec) {
      log_.write("error", name, "claim_failed", details().str("error", ec.message()));
      continue;
    }
    if (config_.fsync != daemon_config::fsync_mode::none) {
      sync_dir(dir);
      sync_dir(spool_ / "running");
      sync_dir(spool_ / "incoming");
    }
    log_.write("info", name, "job_claimed", details().str("file", path.filename().string()));
    auto dj = std::make_shared<daemon_job>();
    dj->name = name;
    dj->dir = dir;
    std::lock_guard lock(jobs_mutex_);
    jobs_.push_back(std::move(dj));
  }
}

void daemon_service::start_waiting() {
  if (draining_) return;
  std::vector<std::shared_ptr<daemon_job>> waiting;
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_)
      if (j->phase == job_phase::waiting) waiting.push_back(j);
  }
  for (const auto& dj : waiting) {
    if (!start(dj)) {
      std::lock_guard lock(jobs_mutex_);
      if (dj->phase == job_phase::waiting && dj->startup_error.empty()) continue;  // no budget yet
      std::erase(jobs_, dj);
    }
  }
}

// Starts a waiting job; false when it is not started (no connection free:
// it waits; or it is invalid: moved to failed/).
bool daemon_service::start(const std::shared_ptr<daemon_job>& dj_ptr) {
  auto& dj = *dj_ptr;
  const auto job_file = dj.dir / "job.json";
  std::string text, error;
  if (!read_text_file(job_file.string(), text, error)) {
    dj.startup_error = error;
    fail_invalid(dj.name, dj.dir, error);
    return false;
  }
  // Relative paths are relative to incoming/, where the job was dropped.
  const auto as_dropped = (spool_ / "incoming" / (dj.name + ".json")).string();
  auto parsed = parse_job(text, as_dropped);
  if (!parsed.job) {
    std::string reason;
    for (const auto& e : parsed.errors) {
      if (!reason.empty()) reason += '\n';
      reason += e.describe(dj.name + ".json");
    }
    dj.startup_error = reason;
    log_.write("error", dj.name, "job_invalid",
               details()
                   .num("problems", static_cast<std::uint64_t>(parsed.errors.size()))
                   .str("first", parsed.errors.front().describe(dj.name + ".json")));
    fail_invalid(dj.name, dj.dir, reason);
    return false;
  }
  dj.spec = std::move(*parsed.job);
  dj.spec.output_dir = dj.dir.string();
  dj.endpoint_url = dj.spec.endpoint.url;

  const auto& limits = config_.limits_for(dj.endpoint_url);
  auto& budget = budgets_[dj.endpoint_url];
  budget.capacity = limits.connections;
  if (budget.in_use >= budget.capacity) return false;  // waits for a connection
  dj.connections =
      std::min(std::max<std::uint32_t>(1, dj.spec.connections), budget.capacity - budget.in_use);
  dj.spec.connections = dj.connections;

  if (!open_devices(dj.spec, dj.devices, error)) {
    dj.startup_error = error;
    fail_invalid(dj.name, dj.dir, error);
    return false;
  }
  if (shard_) dj.devices.stream->set_shard(*shard_);
  output_request request;
  request.resume = true;  // a job in running/ continues where it stopped
  request.fsync = config_.fsync_for_jobs();
  const auto marker = dj.dir / retry_marker;
  std::string reasons;
  const bool retry = fs::exists(marker);
  if (retry && !read_text_file(marker.string(), reasons, error)) {
    dj.startup_error = error;
    fail_invalid(dj.name, dj.dir, error);
    return false;
  }
  if (retry) {
    if (auto problem = request.plan.retry_failed(
            resume_request_of(resume_kind::retry_failed, reasons).reasons)) {
      dj.startup_error = *problem;
      fail_invalid(dj.name, dj.dir, *problem);
      return false;
    }
  }
  std::uint64_t newlines = 0;
  if (!identify(dj.spec, false, request.identity, error, &newlines) ||
      dj.output.open(dj.dir.string(), request, error) != open_outcome::ok) {
    dj.startup_error = error;
    fail_invalid(dj.name, dj.dir, error);
    return false;
  }
  if (dj.output.needs_verify()) {  // the kept results name the records at their index
    opened_devices check;
    bool ok = open_devices(dj.spec, check, error);
    if (ok && shard_) check.stream->set_shard(*shard_);
    if (!ok || dj.output.verify(*check.stream, error) != open_outcome::ok) {
      dj.startup_error = error;
      fail_invalid(dj.name, dj.dir, error);
      return false;
    }
  }
  // The failures to send again are out of results.ndjson now: the request is done.
  if (retry) {
    std::error_code ec;
    fs::remove(marker, ec);
    if (config_.fsync != daemon_config::fsync_mode::none) sync_dir(dj.dir);
  }

  // The account's shared rate: endpoint and token source.
  const auto key = fmt::format("{}\n{}", dj.endpoint_url, auth_identity(dj.spec.auth));
  auto& acct = accounts_[key];
  if (!acct) acct = std::make_unique<account>(limits.requests_per_second, limits.burst);
  dj.acct = acct.get();
  {
    std::lock_guard lock(acct->mutex);
    dj.member = acct->gate.join();
  }

  net::rollout_options options;
  dj.output.attach(options);
  daemon_job* self = &dj;
  dj.estimated_total = estimate_total(dj.spec, newlines, dj.devices, shard_);
  options.on_progress = [this, self](const net::rollout_progress& p) {
    std::lock_guard lock(jobs_mutex_);
    self->progress = p;
    self->view.sample(p.elapsed_s, p.succeeded + p.failed);
  };
  options.on_attempt = [this](std::string_view outcome, std::size_t devices) {
    std::lock_guard lock(metrics_mutex_);
    ++requests_by_outcome_[std::string(outcome)];
    batch_sizes_.observe(static_cast<double>(devices));
  };
  options.on_answer = [this](std::int64_t micros) {
    std::lock_guard lock(metrics_mutex_);
    latency_.observe(static_cast<double>(micros) / 1e6);
  };
  options.shared_gate = [this, self] {
    const auto now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - epoch_).count();
    std::lock_guard lock(self->acct->mutex);
    return epoch_ + std::chrono::microseconds(self->acct->gate.reserve(self->member, now_us));
  };
  try {
    dj.rollout = std::make_unique<net::rollout>(dj.spec, *dj.devices.stream, dj.output.sink(),
                                                std::move(options));
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(acct->mutex);
      acct->gate.leave(dj.member);
    }
    dj.startup_error = e.what();
    fail_invalid(dj.name, dj.dir, e.what());
    return false;
  }
  budget.in_use += dj.connections;
  if (dj.spec.endpoint.tls && !dj.spec.tls.verify) {
    log_.write("warn", dj.name, "tls_not_verified",
               details().str("message",
                             "tls.verify is false: the server's certificate is NOT checked; anyone "
                             "on the path can read the token and the commands"));
  }
  log_.write("info", dj.name, "job_started",
             details()
                 .str("endpoint", dj.endpoint_url)
                 .str("devices", dj.devices.name)
                 .num("connections", static_cast<std::uint64_t>(dj.connections))
                 .num("resumed_records", dj.output.earlier().records)
                 .str("resumed_from", dj.resumed_from)
                 .str("retry_failed",
                      retry ? resume_request_of(resume_kind::retry_failed, reasons).reasons : "")
                 .str("shard", shard_ ? to_string(*shard_) : ""));
  // A cancel that came before the job started.
  if (fs::exists(spool_ / "cancel" / dj.name)) {
    dj.cancel_by_user = true;
    dj.rollout->cancel();
    std::error_code ec;
    fs::remove(spool_ / "cancel" / dj.name, ec);
    log_.write("info", dj.name, "job_cancel_requested", details().str("source", "cancel file"));
  }
  {
    std::lock_guard lock(jobs_mutex_);
    dj.phase = job_phase::running;
    dj.started = steady::now();
  }
  dj.thread = std::thread([this, self] {
    run_summary s;
    std::string problem;
    try {
      s = self->rollout->run();
      problem = self->output.finish(s);
    } catch (const std::exception& e) {
      std::lock_guard lock(jobs_mutex_);
      self->startup_error = e.what();
    }
    if (!problem.empty())
      log_.write("error", self->name, "result_json", details().str("error", problem));
    {
      std::lock_guard lock(jobs_mutex_);
      self->summary = std::move(s);
      self->phase = job_phase::finished;
    }
    self->done = true;
    wake();
  });
  return true;
}

void daemon_service::move_to(const fs::path& from, const std::string& where,
                             const std::string& name, std::string_view reason) {
  std::error_code ec;
  if (!reason.empty()) write_file(from / "reason.txt", std::string(reason) + "\n");
  auto target = spool_ / where / name;
  for (int n = 2; fs::exists(target); ++n) target = spool_ / where / fmt::format("{}.{}", name, n);
  fs::rename(from, target, ec);
  if (ec) {
    log_.write(
        "error", name, "move_failed",
        details().str("from", from.string()).str("to", target.string()).str("error", ec.message()));
    return;
  }
  if (config_.fsync != daemon_config::fsync_mode::none) {
    sync_dir(spool_ / where);
    sync_dir(spool_ / "running");
  }
}

void daemon_service::fail_invalid(const std::string& name, const fs::path& dir,
                                  std::string_view reason) {
  move_to(dir, "failed", name, reason);
  log_.write("error", name, "job_failed", details().str("reason", reason));
  std::scoped_lock lock(jobs_mutex_, metrics_mutex_);
  ++jobs_finished_by_state_["invalid"];
  finished_.push_back({name, "invalid", "failed", std::string(reason), {}});
  if (finished_.size() > 100) finished_.pop_front();
}

void daemon_service::reap() {
  std::vector<std::shared_ptr<daemon_job>> ended;
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_)
      if (j->done) ended.push_back(j);
  }
  for (const auto& dj : ended) {
    dj->thread.join();
    settle(*dj);
  }
}

// A job's thread ended: release what it held, move its folder, count it.
void daemon_service::settle(daemon_job& dj) {
  budgets_[dj.endpoint_url].in_use -= dj.connections;
  {
    std::lock_guard lock(dj.acct->mutex);
    dj.acct->gate.leave(dj.member);
  }
  const auto& s = dj.summary;
  const std::string failure = dj.rollout ? dj.rollout->failure() : std::string();
  const auto to =
      destination_of({s.state, dj.startup_error, dj.cancel_by_drain, dj.cancel_by_user, failure});
  const std::string& state = to.state;
  const std::string where(to_string(to.folder));
  const std::string& reason = to.reason;
  if (where != "running") move_to(dj.dir, where, dj.name, reason);
  // An operator's cancel is not an error; an abort is the guard doing its job.
  const std::string_view level = where != "failed"                           ? "info"
                                 : dj.cancel_by_user && state == "cancelled" ? "info"
                                 : state == "aborted"                        ? "warn"
                                                                             : "error";
  log_.write(level, dj.name, where == "running" ? "job_left_for_resume" : "job_finished",
             details()
                 .str("state", state)
                 .str("folder", where)
                 .num("records", s.records)
                 .num("succeeded", s.count_of(device_status::succeeded))
                 .num("failed", s.count_of(device_status::failed))
                 .num("skipped", s.count_of(device_status::skipped))
                 .num("requests", s.requests)
                 .num("retries", s.retries)
                 .num("elapsed_s", s.elapsed_s)
                 .str("reason", reason));
  // The job leaves the running list and enters the totals at once, so that
  // counters never go back.
  std::scoped_lock lock(jobs_mutex_, metrics_mutex_);
  ++jobs_finished_by_state_[where == "running" ? "drained" : state];
  devices_finished_[0] += dj.progress.succeeded;  // this process's share (not a resumed run's)
  devices_finished_[1] += dj.progress.failed;
  devices_finished_[2] += dj.progress.skipped;
  retries_finished_ += dj.progress.retries;
  rate_wait_finished_s_ += dj.progress.rate_wait_s;
  finished_.push_back({dj.name, state, where, reason, s});
  if (finished_.size() > 100) finished_.pop_front();
  std::erase_if(jobs_, [&](const auto& j) { return j.get() == &dj; });
}

void daemon_service::scan_cancels() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_ / "cancel", ec)) {
    const auto name = e.path().filename().string();
    if (name.starts_with('.')) continue;
    std::shared_ptr<daemon_job> target;
    {
      std::lock_guard lock(jobs_mutex_);
      for (const auto& j : jobs_)
        if (j->name == name && j->phase == job_phase::running) target = j;
    }
    if (!target) continue;  // kept for when the job starts (it may still be in incoming/)
    fs::remove(e.path(), ec);
    if (target->cancel_by_user) continue;
    target->cancel_by_user = true;
    target->rollout->cancel();
    log_.write("info", name, "job_cancel_requested", details().str("source", "cancel file"));
  }
}

// Each running job's progress in the log, every progress_log_interval_s.
void daemon_service::log_progress() {
  if (config_.progress_log_interval_s == 0) return;
  const auto now = steady::now();
  const auto every = std::chrono::seconds(config_.progress_log_interval_s);
  std::lock_guard lock(jobs_mutex_);
  for (const auto& j : jobs_) {
    if (j->phase != job_phase::running || now - j->progress_logged < every) continue;
    j->progress_logged = now;
    const auto f = j->now(j->output.earlier().records);
    log_.write("info", j->name, "job_progress",
               details()
                   .num("done", f.done)
                   .num("total", f.total)
                   .str("total_is", f.exact ? "exact" : "estimated")
                   .num("percent", std::round(f.percent * 10) / 10)
                   .num("devices_per_second", std::round(f.rate))
                   .num("eta_s", f.eta_s >= 0 ? std::round(f.eta_s) : -1.0)
                   .num("failed", j->progress.failed)
                   .num("skipped", j->progress.skipped));
  }
}

// What the spool and this daemon hold under a job's name.
job_folder_facts daemon_service::facts_of(const std::string& name, bool count_pending) {
  job_folder_facts f;
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_) f.active = f.active || j->name == name;
  }
  std::error_code ec;
  f.active = f.active || fs::exists(spool_ / "running" / name, ec);
  f.request_pending = count_pending && (fs::exists(spool_ / "resume" / name, ec) ||
                                        fs::exists(spool_ / "retry-failed" / name, ec));
  f.in_done = fs::is_directory(spool_ / "done" / name, ec);
  f.in_failed = fs::is_directory(spool_ / "failed" / name, ec);
  const auto folder = spool_ / (f.in_done ? "done" : "failed") / name;
  f.started = fs::exists(folder / "rollout.json", ec);  // written when the job starts
  return f;
}

// Resume and retry requests (files in resume/ and retry-failed/, written by
// an operator or the admin port): each job taken back to running/ or refused.
void daemon_service::scan_resumes() {
  if (draining_) return;
  for (const auto kind : {resume_kind::resume, resume_kind::retry_failed}) {
    const auto dir = spool_ / (kind == resume_kind::resume ? "resume" : "retry-failed");
    std::error_code ec;
    std::vector<fs::path> requests;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (!e.path().filename().string().starts_with('.')) requests.push_back(e.path());
    for (const auto& path : requests) {
      {
        std::lock_guard lock(jobs_mutex_);
        if (jobs_.size() >= config_.max_jobs) return;  // taken when a slot frees
      }
      std::string content, error;
      read_text_file(path.string(), content, error);
      const auto name = path.filename().string();
      if (name != clean_name(name)) {
        log_.write("error", name, "resume_refused",
                   details().str("reason", "not a job name").str("file", path.string()));
      } else {
        take_resume(name, resume_request_of(kind, content));
      }
      fs::remove(path, ec);
    }
  }
}

// Moves done/NAME or failed/NAME back to running/NAME as a waiting job; false
// (logged) when the request is refused.
bool daemon_service::take_resume(const std::string& name, const resume_request& request) {
  const auto verdict = judge_resume(name, facts_of(name, false), request);
  const std::string_view kind = request.kind == resume_kind::resume ? "resume" : "retry-failed";
  if (!verdict.accepted) {
    log_.write("error", name, "resume_refused",
               details().str("request", kind).str("reason", verdict.why));
    return false;
  }
  const std::string from(to_string(verdict.from));
  const auto source = spool_ / from / name;
  const auto dir = spool_ / "running" / name;
  std::error_code ec;
  if (request.kind == resume_kind::retry_failed &&
      !write_file(source / retry_marker, request.reasons + "\n")) {
    log_.write("error", name, "resume_refused",
               details().str("request", kind).str("reason", "cannot write in " + source.string()));
    return false;
  }
  fs::rename(source, dir, ec);  // atomic: the job is in one folder or the other
  if (ec) {
    log_.write("error", name, "resume_refused",
               details().str("request", kind).str("reason", ec.message()));
    return false;
  }
  fs::remove(dir / "reason.txt", ec);  // its last ending; summary.json keeps the runs
  if (config_.fsync != daemon_config::fsync_mode::none) {
    sync_dir(dir);
    sync_dir(spool_ / "running");
    sync_dir(spool_ / from);
  }
  log_.write("info", name, "job_resume_taken",
             details().str("request", kind).str("from", from).str("reasons", request.reasons));
  auto dj = std::make_shared<daemon_job>();
  dj->name = name;
  dj->dir = dir;
  dj->resumed_from = from;
  std::lock_guard lock(jobs_mutex_);
  std::erase_if(finished_, [&](const finished_job& f) { return f.name == name; });
  jobs_.push_back(std::move(dj));
  return true;
}

void daemon_service::handle_signal(int sig) {
  if (sig == SIGHUP) {
    daemon_config fresh;
    if (!load_config(fresh, false)) return;  // logged; the old config stays
    if (fresh.admin_listen != config_.admin_listen) {
      log_.write("warn", "", "config_needs_restart",
                 details().str("field", "admin_listen").str("kept", config_.admin_listen));
      fresh.admin_listen = config_.admin_listen;
    }
    if (fresh.admin_token_file != config_.admin_token_file) {
      log_.write("warn", "", "config_needs_restart",
                 details().str("field", "admin_token_file").str("kept", config_.admin_token_file));
      fresh.admin_token_file = config_.admin_token_file;
    }
    config_ = std::move(fresh);
    for (auto& [key, acct] : accounts_) {
      const auto url = key.substr(0, key.find('\n'));
      const auto& l = config_.limits_for(url);
      std::lock_guard lock(acct->mutex);
      if (acct->gate.rate() != l.requests_per_second)
        acct->gate.set_rate(l.requests_per_second, l.burst);
    }
    log_.write("info", "", "config_reloaded",
               details()
                   .str("file", config_file_)
                   .num("max_jobs", static_cast<std::uint64_t>(config_.max_jobs)));
    return;
  }
  if (draining_) {  // a second stop signal: do not wait for the deadline
    drain_deadline_ = steady::now();
    return;
  }
  draining_ = true;
  notifier_.send("STOPPING=1\nSTATUS=draining");
  drain_deadline_ = steady::now() + std::chrono::seconds(config_.drain_timeout_s);
  std::lock_guard lock(jobs_mutex_);
  log_.write("info", "", "draining",
             details()
                 .str("signal", sig == SIGINT ? "SIGINT" : "SIGTERM")
                 .num("running_jobs", static_cast<std::uint64_t>(jobs_.size()))
                 .num("deadline_s", static_cast<std::uint64_t>(config_.drain_timeout_s)));
  for (const auto& j : jobs_) {
    if (j->phase != job_phase::running) continue;
    j->cancel_by_drain = true;
    j->rollout->cancel();
  }
}

// ------------------------------------------------------------------ admin

std::string daemon_service::jobs_json() {
  std::string out = "{\"jobs\":[";
  std::lock_guard lock(jobs_mutex_);
  bool first = true;
  auto open = [&](std::string_view name, std::string_view state) {
    out += first ? "{" : ",{";
    first = false;
    out += "\"name\":";
    append_json_string(out, name);
    out += ",\"state\":";
    append_json_string(out, state);
  };
  for (const auto& j : jobs_) {
    const auto& p = j->progress;
    open(j->name, j->phase == job_phase::waiting ? "waiting" : "running");
    fmt::format_to(std::back_inserter(out),
                   ",\"records\":{},\"input_complete\":{},\"done\":{},\"succeeded\":{},"
                   "\"failed\":{},\"skipped\":{},\"requests\":{},\"retries\":{},"
                   "\"batch_size\":{},\"connections\":{},\"elapsed_s\":{:.3f}",
                   p.records, p.input_complete, p.done, p.succeeded, p.failed, p.skipped,
                   p.requests, p.retries, p.batch_size, j->connections, p.elapsed_s);
    if (j->phase != job_phase::waiting) {
      // Done of total (the earlier runs' results included), the rate over
      // the last seconds, the ETA (null until there is a rate).
      const auto f = j->now(j->output.earlier().records);
      fmt::format_to(
          std::back_inserter(out),
          ",\"progress\":{{\"done\":{},\"total\":{},\"total_exact\":{},\"percent\":{:.1f},"
          "\"devices_per_second\":{:.1f},\"eta_s\":",
          f.done, f.total, f.exact, f.percent, f.rate);
      if (f.eta_s >= 0) {
        fmt::format_to(std::back_inserter(out), "{:.0f}}}", f.eta_s);
      } else {
        out += "null}";
      }
    }
    if (j->cancel_by_user) out += ",\"cancelling\":true";
    out += '}';
  }
  for (const auto& f : finished_) {
    open(f.name, f.state);
    out += ",\"folder\":";
    append_json_string(out, f.where);
    fmt::format_to(std::back_inserter(out),
                   ",\"records\":{},\"succeeded\":{},\"failed\":{},\"skipped\":{},"
                   "\"requests\":{},\"retries\":{},\"elapsed_s\":{:.3f}",
                   f.summary.records, f.summary.count_of(device_status::succeeded),
                   f.summary.count_of(device_status::failed),
                   f.summary.count_of(device_status::skipped), f.summary.requests,
                   f.summary.retries, f.summary.elapsed_s);
    if (!f.reason.empty()) {
      out += ",\"reason\":";
      append_json_string(out, f.reason);
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string daemon_service::metrics_text() {
  namespace pm = prometheus;
  std::string out;
  std::array<std::uint64_t, 3> devices{};
  std::uint64_t retries = 0;
  double rate_wait = 0;
  std::size_t waiting = 0, running = 0;
  std::size_t incoming = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_ / "incoming", ec)) incoming += is_job_file(e);
  std::scoped_lock lock(jobs_mutex_, metrics_mutex_);
  {
    for (const auto& j : jobs_) {
      (j->phase == job_phase::waiting ? waiting : running) += 1;
      devices[0] += j->progress.succeeded;
      devices[1] += j->progress.failed;
      devices[2] += j->progress.skipped;
      retries += j->progress.retries;
      rate_wait += j->progress.rate_wait_s;
    }
  }

  pm::append_header(out, "fleetcast_jobs", "gauge", "Jobs by state right now.");
  pm::append_sample(out, "fleetcast_jobs", "state", "incoming", static_cast<double>(incoming));
  pm::append_sample(out, "fleetcast_jobs", "state", "waiting", static_cast<double>(waiting));
  pm::append_sample(out, "fleetcast_jobs", "state", "running", static_cast<double>(running));
  pm::append_header(out, "fleetcast_jobs_finished_total", "counter",
                    "Jobs that ended since the daemon started, by final state.");
  for (const char* s : {"completed", "aborted", "cancelled", "failed", "invalid", "drained"}) {
    const auto it = jobs_finished_by_state_.find(s);
    pm::append_sample(out, "fleetcast_jobs_finished_total", "state", s,
                      it == jobs_finished_by_state_.end() ? 0.0 : static_cast<double>(it->second));
  }
  pm::append_header(out, "fleetcast_devices_total", "counter",
                    "Devices with a result since the daemon started, by status.");
  constexpr std::array<device_status, 3> statuses{device_status::succeeded, device_status::failed,
                                                  device_status::skipped};
  for (std::size_t i = 0; i < 3; ++i) {
    pm::append_sample(out, "fleetcast_devices_total", "status", to_string(statuses[i]),
                      static_cast<double>(devices[i] + devices_finished_[i]));
  }
  pm::append_header(out, "fleetcast_requests_total", "counter",
                    "Requests by what came of them (accounted, throttled, no_answer, ...).");
  for (const auto& [outcome, n] : requests_by_outcome_)
    pm::append_sample(out, "fleetcast_requests_total", "outcome", outcome, static_cast<double>(n));
  pm::append_header(out, "fleetcast_retries_total", "counter", "Batches sent again.");
  pm::append_sample(out, "fleetcast_retries_total", "", "",
                    static_cast<double>(retries + retries_finished_));
  pm::append_header(out, "fleetcast_rate_limit_wait_seconds_total", "counter",
                    "Time requests waited for a rate limit, summed over connections.");
  pm::append_sample(out, "fleetcast_rate_limit_wait_seconds_total", "", "",
                    rate_wait + rate_wait_finished_s_);
  latency_.append(out, "fleetcast_request_duration_seconds",
                  "From a request's write to its answer.");
  batch_sizes_.append(out, "fleetcast_batch_size", "Devices per request.");
  pm::append_header(out, "fleetcast_draining", "gauge", "1 while the daemon drains.");
  pm::append_sample(out, "fleetcast_draining", "", "", draining_ ? 1 : 0);
  return out;
}

net::admin_response daemon_service::admin(const net::admin_request& req) {
  constexpr std::string_view text = "text/plain; charset=utf-8";
  switch (admin_access(req.method, req.client_on_loopback, req.authorization, admin_token_)) {
    case admin_verdict::unauthorized:
      return {401, std::string(text),
              "a change needs Authorization: Bearer <the token in admin_token_file>\n", true};
    case admin_verdict::forbidden:
      return {403, std::string(text),
              "changes are taken from loopback clients only; set admin_token_file to take them "
              "from elsewhere with a bearer token\n"};
    case admin_verdict::allowed:
      break;
  }
  const std::string_view target = req.target;
  if (req.method == "GET" && target == "/readyz")
    return ready_ && !draining_ ? net::admin_response{200, std::string(text), "ready\n"}
                                : net::admin_response{503, std::string(text), "not ready\n"};
  if (req.method == "GET" && target == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
  if (req.method == "GET" && target == "/healthz")
    return draining_ ? net::admin_response{503, "text/plain; charset=utf-8", "draining\n"}
                     : net::admin_response{200, "text/plain; charset=utf-8", "ok\n"};
  if (req.method == "GET" && target == "/jobs") return {200, "application/json", jobs_json()};
  if (target.starts_with("/jobs/")) return job_action(req.method, target.substr(6));
  return {404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz, /jobs\n"};
}

// POST /jobs/NAME/cancel, /jobs/NAME/resume, /jobs/NAME/retry-failed[?reasons=R,...].
net::admin_response daemon_service::job_action(std::string_view method, std::string_view rest) {
  constexpr std::string_view text = "text/plain; charset=utf-8";
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return {404, std::string(text), "not found: try /jobs\n"};
  const auto name = std::string(rest.substr(0, slash));
  const auto action = rest.substr(slash + 1);
  if (action != "cancel" && action != "resume" && action != "retry-failed")
    return {404, std::string(text), "not found: POST /jobs/NAME/cancel, resume or retry-failed\n"};
  if (method != "POST") return {405, std::string(text), "use POST\n"};
  if (name.empty() || name != clean_name(name)) return {400, std::string(text), "not a job name\n"};
  if (action != "cancel") {
    const auto kind = action == "resume" ? resume_kind::resume : resume_kind::retry_failed;
    std::string reasons;
    if (query.starts_with("reasons="))
      reasons = std::string(query.substr(8));
    else if (!query.empty())
      return {400, std::string(text), "the only parameter is reasons=REASON,...\n"};
    const auto verdict = judge_resume(name, facts_of(name, true), resume_request_of(kind, reasons));
    if (!verdict.accepted) return {verdict.http_status, std::string(text), verdict.why + "\n"};
    const auto dir = spool_ / (kind == resume_kind::resume ? "resume" : "retry-failed");
    if (!write_file(dir / ("." + name), reasons) ||
        (std::rename((dir / ("." + name)).c_str(), (dir / name).c_str()) != 0))
      return {500, std::string(text), "cannot write the request file\n"};
    wake();
    return {202, "application/json", fmt::format("{{\"{}\":\"requested\"}}\n", action)};
  }
  bool known = fs::exists(spool_ / "incoming" / (name + ".json"));
  {
    std::lock_guard lock(jobs_mutex_);
    for (const auto& j : jobs_) known = known || j->name == name;
  }
  if (!known) return {404, "text/plain; charset=utf-8", "no such job waiting or running\n"};
  if (!write_file(spool_ / "cancel" / name, ""))
    return {500, "text/plain; charset=utf-8", "cannot write the cancel file\n"};
  wake();
  return {202, "application/json", "{\"cancel\":\"requested\"}\n"};
}

// ------------------------------------------------------------------ the loop

int daemon_service::run() {
  if (!load_config(config_, true)) return 2;
  if (!prepare_spool()) return 2;

  // Signals arrive through a signalfd: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal_fd_ = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ >= 0) {
    const auto mask = IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE;
    if (::inotify_add_watch(inotify_fd_, (spool_ / "incoming").c_str(), mask) < 0 ||
        ::inotify_add_watch(inotify_fd_, (spool_ / "cancel").c_str(), mask) < 0 ||
        ::inotify_add_watch(inotify_fd_, (spool_ / "resume").c_str(), mask) < 0 ||
        ::inotify_add_watch(inotify_fd_, (spool_ / "retry-failed").c_str(), mask) < 0) {
      ::close(inotify_fd_);
      inotify_fd_ = -1;
    }
  }

  if (!config_.admin_token_file.empty()) {
    std::string error;
    if (!read_text_file(config_.admin_token_file, admin_token_, error)) {
      fmt::print(stderr, "fleetcast daemon: admin_token_file: {}\n", error);
      return 2;
    }
    while (!admin_token_.empty() && std::isspace(static_cast<unsigned char>(admin_token_.back())))
      admin_token_.pop_back();
    if (admin_token_.empty()) {
      fmt::print(stderr, "fleetcast daemon: admin_token_file: {} is empty\n",
                 config_.admin_token_file);
      return 2;
    }
  }
  std::unique_ptr<net::admin_server> admin_port;
  if (!config_.admin_listen.empty()) {
    try {
      admin_port = std::make_unique<net::admin_server>(
          config_.admin_listen, [this](const net::admin_request& r) { return admin(r); });
    } catch (const std::exception& e) {
      fmt::print(stderr, "fleetcast daemon: {}\n", e.what());
      return 2;
    }
    const auto host = config_.admin_listen.substr(0, config_.admin_listen.rfind(':'));
    if (!is_loopback_listen(config_.admin_listen) && admin_token_.empty()) {
      log_.write("warn", "", "admin_changes_loopback_only",
                 details()
                     .str("listen", config_.admin_listen)
                     .str("message",
                          "reading is open on this address; cancel and resume are refused (403) "
                          "from other hosts until admin_token_file is set"));
    }
    const auto address = fmt::format("{}:{}", host, admin_port->port());
    write_file(spool_ / "admin.address", address + "\n");
  }
  log_.write("info", "", "daemon_started",
             details()
                 .str("spool", spool_.string())
                 .str("config", config_file_)
                 .num("max_jobs", static_cast<std::uint64_t>(config_.max_jobs))
                 .str("admin", admin_port ? fmt::format("{}", admin_port->port()) : "off")
                 .str("watch", inotify_fd_ >= 0 ? "inotify" : "polling")
                 .str("shard", shard_ ? to_string(*shard_) : ""));

  recover();
  ready_ = true;
  notifier_.send(fmt::format("READY=1\nSTATUS=serving {}", spool_.string()));
  for (;;) {
    reap();
    log_progress();
    scan_cancels();
    scan_resumes();
    start_waiting();
    claim_incoming();
    start_waiting();
    if (draining_) {
      if (running_jobs() == 0) break;
      if (steady::now() >= drain_deadline_) {
        log_.write(
            "warn", "", "drain_deadline_passed",
            details().num("jobs_still_finishing", static_cast<std::uint64_t>(running_jobs())));
        // Results so far are on disk; the journal marks what may have been
        // sent. Threads still in requests end with the process.
        std::fflush(stderr);
        std::_Exit(0);
      }
    }
    pollfd fds[3] = {{signal_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int timeout = draining_ ? 100 : static_cast<int>(config_.poll_interval_ms);
    if (const auto every = notifier_.watchdog_every()) {
      const auto now = steady::now();
      if (now >= watchdog_due_) {
        notifier_.send("WATCHDOG=1");
        watchdog_due_ = now + *every;
      }
      timeout = std::min<int>(
          timeout,
          static_cast<int>(
              std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_due_ - now).count()) +
              1);
    }
    const int n = ::poll(fds, inotify_fd_ >= 0 ? 3 : 2, timeout);
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(signal_fd_, &info, sizeof info) == sizeof info)
        handle_signal(static_cast<int>(info.ssi_signo));
    }
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
    }
    if (inotify_fd_ >= 0 && (fds[2].revents & POLLIN)) {
      alignas(inotify_event) char buf[4096];
      while (::read(inotify_fd_, buf, sizeof buf) > 0) {
      }
    }
  }
  log_.write("info", "", "daemon_stopped", details().str("reason", "drained"));
  admin_port.reset();
  return 0;
}

}  // namespace

int daemon(const daemon_flags& flags) {
  daemon_service service(flags.spool, flags.config, flags.shard);
  return service.run();
}

}  // namespace fleetcast::app
