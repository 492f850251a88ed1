// The daemon (see daemon.hpp and daemon_service.hpp): start-up, the event
// loop (one io_context on one thread: signals through asio::signal_set, the
// spool through inotify on an Asio descriptor, a timer for polling, the
// watchdog and the drain deadline), and a job started as a rollout on that
// loop. Jobs against one endpoint share a connection budget and one pool of
// connections (a connection one job frees serves the next without a new
// handshake) and, per endpoint and token source, one fair request-rate
// limit (core/daemon/fair_rate_gate.hpp).
#include "app/daemon.hpp"
#include "app/daemon_service.hpp"
#include "app/library_parts.hpp"
#include "app/say.hpp"

#include <fleetcast/core/job/job_parser.hpp>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace fleetcast::app {
namespace daemon_detail {

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

bool daemon_service::load_config(daemon_config& out, bool at_start) {
  if (config_file_.empty()) {
    out = daemon_config{};
    return true;
  }
  std::string text, error;
  if (!read_text_file(config_file_, text, error)) {
    if (at_start) say("fleetcast daemon: {}\n", error);
    log_.write("error", "", "config_rejected",
               details().str("file", config_file_).str("error", error));
    return false;
  }
  auto parsed = parse_daemon_config(text);
  if (!parsed.config) {
    for (const auto& e : parsed.errors) {
      if (at_start) say("fleetcast daemon: {}: {}\n", config_file_, e);
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
      say("fleetcast daemon: {}: {}\n", (spool_ / sub).string(), ec.message());
      return false;
    }
  }
  const auto lock_path = spool_ / "daemon.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    say("fleetcast daemon: {}: {}\n", lock_path.string(),
        errno == EWOULDBLOCK ? "another daemon serves this spool" : std::strerror(errno));
    return false;
  }
  return true;
}

daemon_service::daemon_service(fs::path spool, std::string config_file,
                               std::optional<shard_spec> shard)
    : spool_(std::move(spool)), config_file_(std::move(config_file)), shard_(shard) {}
daemon_service::~daemon_service() = default;

// From any thread: the loop runs tick() soon (once for many wakes).
void daemon_service::wake() {
  if (!ioc_ || wake_pending_.exchange(true)) return;
  boost::asio::post(*ioc_, [this] {
    wake_pending_ = false;
    tick();
  });
}

std::size_t daemon_service::running_jobs() const {
  std::lock_guard lock(jobs_mutex_);
  return static_cast<std::size_t>(std::count_if(
      jobs_.begin(), jobs_.end(), [](const auto& j) { return j->phase != job_phase::waiting; }));
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

// The job file in the job's folder, parsed (relative paths are relative to
// incoming/, where the job was dropped). False: moved to failed/ with why.
bool daemon_service::read_spec(daemon_job& dj) {
  std::string text, error;
  if (!read_text_file((dj.dir / "job.json").string(), text, error)) {
    dj.startup_error = error;
    fail_invalid(dj.name, dj.dir, error);
    return false;
  }
  auto parsed = parse_job(text, (spool_ / "incoming" / (dj.name + ".json")).string());
  if (auto notice = check_window_now(parsed); !notice.empty())
    log_.write("info", dj.name, "job_window_ahead", details().str("notice", notice));
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
  return true;
}

// What the job's folder is opened with: a resume (a job in running/
// continues where it stopped), and the failures a retry-failed request
// names. False with `error`.
bool daemon_service::session_options_of(daemon_job& dj, net::session_options& options,
                                        std::string& reasons, std::string& error) {
  options.resume = true;
  options.record_early_cancel = true;  // a job cancelled before it sent is on record, resumable
  options.fsync = config_.fsync_for_jobs();
  options.shard = shard_;
  options.on_act = [this, self = &dj](const act_request& r, const act_result& result) {
    log_.write(result.applied ? "info" : "warn", self->name, "job_operator_act",
               details()
                   .str("act", to_string(r.act))
                   .str("by", r.by)
                   .str("result", result.text)
                   .str("applied", result.applied ? "yes" : "no"));
  };
  const auto marker = dj.dir / retry_marker;
  if (!fs::exists(marker)) return true;
  if (!read_text_file(marker.string(), reasons, error)) return false;
  reasons = resume_request_of(resume_kind::retry_failed, reasons).reasons;
  options.retry_failed = reasons;
  return true;
}

// The engine's options of a job: progress and metrics hooks, the
// endpoint's connections and trust store (shared), the account's rate.
void daemon_service::engine_options(daemon_job& dj, net::rollout_options& options) {
  daemon_job* self = &dj;
  options.on_progress = [this, self](const net::rollout_progress& p) {
    std::lock_guard lock(jobs_mutex_);
    if (p.done > self->progress.done || p.held) self->last_result = steady::now();
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
  const auto pool_key = fmt::format("{}\n{}\n{}\n{}", dj.endpoint_url, dj.spec.tls.verify,
                                    dj.spec.tls.ca_file.value_or(""), dj.spec.proxy.value_or(""));
  auto& pool = pools_[pool_key];
  if (!pool) pool = std::make_shared<net::connection_pool>();
  options.pool = pool;
  if (dj.spec.endpoint.tls) {
    auto& tls = tls_contexts_[pool_key];
    std::string ignored;  // when it cannot be made, the rollout says why (a start-up error)
    if (!tls) tls = net::tls_client::make(dj.spec.tls, ignored);
    options.tls = tls;
  }
  // The account's shared rate: endpoint and token source.
  const auto& limits = config_.limits_for(dj.endpoint_url);
  const auto key = fmt::format("{}\n{}", dj.endpoint_url, auth_identity(dj.spec.auth));
  auto& acct = accounts_[key];
  if (!acct) acct = std::make_unique<account>(limits.requests_per_second, limits.burst);
  dj.acct = acct.get();
  {
    std::lock_guard lock(acct->mutex);
    dj.member = acct->gate.join();
  }
  options.shared_gate = [this, self] {
    const auto now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - epoch_).count();
    std::lock_guard lock(self->acct->mutex);
    return epoch_ + std::chrono::microseconds(self->acct->gate.reserve(self->member, now_us));
  };
}

void daemon_service::log_started(daemon_job& dj, const std::string& retry_reasons) {
  if (dj.spec.endpoint.tls && !dj.spec.tls.verify) {
    log_.write("warn", dj.name, "tls_not_verified",
               details().str("message",
                             "tls.verify is false: the server's certificate is NOT checked; anyone "
                             "on the path can read the token and the commands"));
  }
  log_.write("info", dj.name, "job_started",
             details()
                 .str("endpoint", dj.endpoint_url)
                 .str("devices", dj.session->devices_name())
                 .num("connections", static_cast<std::uint64_t>(dj.connections))
                 .num("resumed_records", dj.session->earlier().records)
                 .str("resumed_from", dj.resumed_from)
                 .str("retry_failed", retry_reasons)
                 .str("shard", shard_ ? to_string(*shard_) : ""));
}

// Starts a waiting job; false when it is not started (no connection free:
// it waits; or it cannot run: moved to failed/ with why).
bool daemon_service::start(const std::shared_ptr<daemon_job>& dj_ptr) {
  auto& dj = *dj_ptr;
  const auto refuse = [&](const std::string& why) {
    dj.startup_error = why;
    fail_invalid(dj.name, dj.dir, why);
    return false;
  };
  if (!read_spec(dj)) return false;
  auto& budget = budgets_[dj.endpoint_url];
  budget.capacity = config_.limits_for(dj.endpoint_url).connections;
  if (budget.in_use >= budget.capacity) return false;  // waits for a connection
  dj.connections =
      std::min(std::max<std::uint32_t>(1, dj.spec.connections), budget.capacity - budget.in_use);
  dj.spec.connections = dj.connections;
  net::session_options options;
  std::string retry_reasons, error;
  if (!session_options_of(dj, options, retry_reasons, error)) return refuse(error);
  engine_options(dj, options.rollout);
  acks_options(dj, options);
  dj.session = std::make_unique<net::session>(ioc_->get_executor(), dj.spec, std::move(options));
  if (const auto ec = dj.session->open(error)) {  // the job fails, its rate given back
    std::lock_guard lock(dj.acct->mutex);
    dj.acct->gate.leave(dj.member);
    return refuse(error);
  }
  // The failures to send again are out of results.ndjson now: the request is done.
  if (std::error_code ec;
      fs::remove(dj.dir / retry_marker, ec) && config_.fsync != daemon_config::fsync_mode::none)
    sync_dir(dj.dir);
  dj.estimated_total = dj.session->estimated_total();
  budget.in_use += dj.connections;
  log_started(dj, retry_reasons);
  // A cancel that came before the job started.
  if (fs::exists(spool_ / "cancel" / dj.name)) {
    dj.cancel_by_user = true;
    cancel_job(dj);
    std::error_code ec;
    fs::remove(spool_ / "cancel" / dj.name, ec);
    log_.write("info", dj.name, "job_cancel_requested", details().str("source", "cancel file"));
  }
  {
    std::lock_guard lock(jobs_mutex_);
    dj.phase = job_phase::running;
    dj.acks_now.enabled = dj.session->acks_enabled();
    dj.earlier_records = dj.session->earlier().records;
    dj.started = steady::now();
    dj.last_result = dj.started;
  }
  run_job(dj_ptr);
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
    if (fresh.admin_hosts != config_.admin_hosts) {
      log_.write("warn", "", "config_needs_restart", details().str("field", "admin_hosts"));
      fresh.admin_hosts = config_.admin_hosts;
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
  const auto running = running_now();
  log_.write("info", "", "draining",
             details()
                 .str("signal", sig == SIGINT ? "SIGINT" : "SIGTERM")
                 .num("running_jobs", static_cast<std::uint64_t>(running.size()))
                 .num("deadline_s", static_cast<std::uint64_t>(config_.drain_timeout_s)));
  for (const auto& j : running) {  // not under jobs_mutex_: a job may end as it is cancelled
    j->cancel_by_drain = true;
    cancel_job(*j);
  }
}

std::vector<std::shared_ptr<daemon_job>> daemon_service::running_now() const {
  std::vector<std::shared_ptr<daemon_job>> out;
  std::lock_guard lock(jobs_mutex_);
  for (const auto& j : jobs_)
    if (j->phase == job_phase::running) out.push_back(j);
  return out;
}

// ------------------------------------------------------------------ the loop

// inotify on the folders a client drops files into (none: polling only).
void daemon_service::watch_spool() {
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ < 0) return;
  const auto mask = IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE;
  for (const char* folder : {"incoming", "cancel", "resume", "retry-failed"}) {
    if (::inotify_add_watch(inotify_fd_, (spool_ / folder).c_str(), mask) < 0) {
      ::close(inotify_fd_);
      inotify_fd_ = -1;
      return;
    }
  }
}

// admin_token_file, when set: read and trimmed; false (said) when it
// cannot be read or is empty.
bool daemon_service::read_admin_token() {
  admin_hosts_ = config_.admin_hosts;
  if (config_.admin_token_file.empty()) return true;
  std::string error;
  if (!read_text_file(config_.admin_token_file, admin_token_, error)) {
    say("fleetcast daemon: admin_token_file: {}\n", error);
    return false;
  }
  while (!admin_token_.empty() && std::isspace(static_cast<unsigned char>(admin_token_.back())))
    admin_token_.pop_back();
  if (admin_token_.empty()) {
    say("fleetcast daemon: admin_token_file: {} is empty\n", config_.admin_token_file);
    return false;
  }
  return true;
}

// The admin port, when admin_listen is set; its address written to the
// spool. False (said) when it cannot listen.
bool daemon_service::open_admin_port(std::unique_ptr<net::admin_server>& port) {
  if (config_.admin_listen.empty()) return true;
  try {
    port = std::make_unique<net::admin_server>(
        config_.admin_listen, [this](const net::admin_request& r) { return admin(r); });
  } catch (const std::exception& e) {
    say("fleetcast daemon: {}\n", e.what());
    return false;
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
  write_file(spool_ / "admin.address", fmt::format("{}:{}", host, port->port()) + "\n");
  return true;
}

// The timer's next wait: the poll (100 ms while draining), or sooner when
// systemd's watchdog is due (told here when it is).
std::chrono::milliseconds daemon_service::timer_wait() {
  auto next = std::chrono::milliseconds(draining_ ? 100 : config_.poll_interval_ms);
  if (const auto every = notifier_.watchdog_every()) {
    const auto now = steady::now();
    if (now >= watchdog_due_) {
      notifier_.send("WATCHDOG=1");
      watchdog_due_ = now + *every;
    }
    next =
        std::min(next, std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_due_ - now) +
                           std::chrono::milliseconds(1));
  }
  return next;
}

int daemon_service::run() {
  if (!load_config(config_, true)) return 2;
  if (!prepare_spool()) return 2;

  // One event loop: signals (asio::signal_set, installed before the admin
  // port's thread starts), the spool, timers and every job.
  ioc_ = std::make_unique<boost::asio::io_context>(1);
  auto& ioc = *ioc_;
  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT, SIGHUP);
  watch_spool();
  std::unique_ptr<net::admin_server> admin_port;
  if (!read_admin_token() || !open_admin_port(admin_port)) return 2;
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

  std::function<void()> on_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      handle_signal(sig);
      tick();
      on_signal();
    });
  };
  on_signal();
  boost::asio::posix::stream_descriptor watch(ioc);
  alignas(inotify_event) std::array<char, 4096> events;
  std::function<void()> on_change = [&] {
    watch.async_read_some(boost::asio::buffer(events),
                          [&](boost::system::error_code ec, std::size_t) {
                            if (ec) return;
                            wake();  // one tick for a burst of events, not one per read
                            on_change();
                          });
  };
  if (inotify_fd_ >= 0) {
    watch.assign(inotify_fd_);
    on_change();
  }
  // Polling (a spool on a file system without inotify, files that came
  // while a scan ran), the watchdog and the drain's pace.
  boost::asio::steady_timer timer(ioc);
  std::function<void()> on_timer = [&] {
    timer.expires_after(timer_wait());
    timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      tick();
      on_timer();
    });
  };
  tick();
  on_timer();
  ioc.run();  // until tick() stops it: drained, nothing running

  const int status = cut_ ? 4 : 0;
  log_.write("info", "", "daemon_stopped",
             details().str("reason",
                           cut_ ? "drained; requests in flight cut at the deadline" : "drained"));
  admin_port.reset();
  pools_.clear();  // idle connections, before the loop's objects go
  return status;
}

void daemon_service::tick() {
  sample_acks();
  reap();
  log_progress();
  scan_cancels();
  scan_resumes();
  start_waiting();
  claim_incoming();
  start_waiting();
  if (!draining_) return;
  if (running_jobs() == 0) {
    ioc_->stop();
  } else if (steady::now() >= drain_deadline_ && !cut_) {
    cut_at_deadline();
  }
}

// The drain deadline: requests still in flight are cut (their devices are
// recorded cancelled and uncertain: a resume marks them so), then the jobs
// end as a cancel ends them.
void daemon_service::cut_at_deadline() {
  cut_ = true;
  std::uint64_t in_flight = 0;
  for (const auto& j : running_now()) {
    if (!j->session) continue;
    ++in_flight;
    cancel_job(*j);  // the second cancel: cut
  }
  log_.write("warn", "", "drain_deadline_passed", details().num("jobs_still_finishing", in_flight));
}

}  // namespace daemon_detail
int daemon(const daemon_flags& flags) {
  daemon_detail::daemon_service service(flags.spool, flags.config, flags.shard);
  return service.run();
}

}  // namespace fleetcast::app
