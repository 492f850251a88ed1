// daemon_service: the daemon's supervisor (see daemon.hpp), in three parts:
// daemon.cpp (start-up, the event loop, signals, starting a job),
// daemon_spool.cpp (the spool's folders: recovery, claims, where an ended job
// goes, cancel and resume requests, progress events) and daemon_admin.cpp
// (the admin port: /metrics, /jobs and the requests it takes). One thread
// runs the event loop: the spool, signals, timers and every job's rollout
// (coroutines on one io_context, one connection pool per endpoint shared by
// the jobs to it). The admin port has a thread of its own and reads shared
// state under `jobs_mutex_` and `metrics_mutex_`.
#pragma once

#include <fleetcast/core/input/shard.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/session/session.hpp>
#include "app/daemon_log.hpp"
#include "app/library_parts.hpp"
#include "app/sd_notify.hpp"
#include "core/daemon/daemon_config.hpp"
#include "core/daemon/fair_rate_gate.hpp"
#include "core/daemon/spool_rules.hpp"
#include "core/output/progress_view.hpp"
#include "core/output/prometheus.hpp"
#include "net/server/admin_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace fleetcast::app::daemon_detail {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// Files (daemon_spool.cpp).
void sync_dir(const fs::path& dir);
// A job name that is safe as a folder name and a metrics label: the default
// name `fleetcast run` gives a job file (core's job_name_from_stem).
std::string clean_name(std::string_view stem);
// A job file ready to be claimed: NAME.json, not hidden.
bool is_job_file(const fs::directory_entry& e);
bool write_file(const fs::path& path, std::string_view text);
// What identifies a job's token source, for the shared account rate.
std::string_view auth_identity(const auth_config& a);

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
  // Its crash-safe run on the daemon's io_context (after spec, which it
  // refers to): set by start() on the loop's thread, used there only.
  std::unique_ptr<net::session> session;
  std::string failure;  // why the job failed (the session's outcome)
  std::string endpoint_url;
  // Set by the supervisor, read by the admin port too.
  std::atomic<std::uint32_t> connections{0};
  account* acct = nullptr;
  std::uint32_t member = 0;
  std::atomic<bool> cancel_by_user{false};
  std::atomic<bool> cancel_by_drain{false};
  bool done = false;  // its rollout completed (the loop's thread only)
  // Written by the job's thread, read under jobs_mutex.
  job_phase phase = job_phase::waiting;
  net::rollout_progress progress;
  run_summary summary;
  std::string startup_error;
  // The delivery outcomes so far (copied from the stage on the loop's thread).
  struct ack_figures {
    bool enabled = false;        // the job has acks (set as it starts)
    bool waiting_phase = false;  // every answer is in: waiting for acks
    std::uint64_t waiting = 0;
    delivery_counts counts;
    std::string source;  // the subscription's state
  } acks_now;
  steady::time_point started = steady::now();
  std::uint64_t earlier_records = 0;  // kept from earlier runs (set as it starts)
  std::string resumed_from;           // done or failed, when an operator asked for a resume
  std::uint64_t estimated_total = 0;  // the list's records, estimated (0: unknown)
  progress_view view;                 // the current rate (under jobs_mutex)
  steady::time_point progress_logged = steady::now();
  // The last new result, or the last moment the job held back on purpose
  // (fleetcast_job_stalled_seconds).
  steady::time_point last_result = steady::now();
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

class daemon_service {
 public:
  daemon_service(fs::path spool, std::string config_file, std::optional<shard_spec> shard);

  int run();
  ~daemon_service();

 private:
  // The loop's work, after any event (a signal, a spool change, a job's
  // end, a request on the admin port) and at every poll interval.
  void tick();
  void cut_at_deadline();
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
  static constexpr std::size_t jobs_checked_per_turn = 8;
  // The last listing's files not checked yet, oldest first.
  std::vector<std::pair<fs::file_time_type, fs::path>> incoming_backlog_;
  fs::file_time_type incoming_listed_{};  // incoming/'s time when last listed whole
  steady::time_point incoming_listed_at_{};
  void start_waiting();
  bool start(const std::shared_ptr<daemon_job>& dj);
  void watch_spool();
  bool read_admin_token();
  bool open_admin_port(std::unique_ptr<net::admin_server>& port);
  std::chrono::milliseconds timer_wait();
  bool read_spec(daemon_job& dj);
  bool session_options_of(daemon_job& dj, net::session_options& options, std::string& reasons,
                          std::string& error);
  void engine_options(daemon_job& dj, net::rollout_options& options);
  void log_started(daemon_job& dj, const std::string& retry_reasons);
  void reap();
  void settle(daemon_job& dj);
  // Delivery acknowledgements (daemon_acks.cpp).
  void acks_options(daemon_job& dj, net::session_options& options);
  subscription_hub* shared_subscription(const job& spec, const net::amqp_receiver_config& sub);
  void run_job(const std::shared_ptr<daemon_job>& dj);
  void end_job(daemon_job& dj, boost::system::error_code ec, net::session_outcome o);
  void cancel_job(daemon_job& dj);
  void sample_acks();
  void append_ack_metrics(std::string& out);
  void move_to(const fs::path& from, const std::string& where, const std::string& name,
               std::string_view reason);
  void fail_invalid(const std::string& name, const fs::path& dir, std::string_view reason);
  void wake();
  std::size_t running_jobs() const;
  std::vector<std::shared_ptr<daemon_job>> running_now() const;  // a copy, taken under the lock
  // Admin.
  net::admin_response admin(const net::admin_request& req);
  net::admin_response admin_answer(const net::admin_request& req);
  net::admin_response job_action(const net::admin_request& req, std::string_view rest);
  net::admin_response operator_request(const net::admin_request& req, const std::string& name,
                                       operator_act act);
  std::string metrics_text();
  void append_job_metrics(std::string& out);
  std::string jobs_json();

  fs::path spool_;
  std::string config_file_;
  std::optional<shard_spec> shard_;
  daemon_config config_;
  json_log log_;

  std::unique_ptr<boost::asio::io_context> ioc_;
  std::atomic<bool> wake_pending_{false};  // a tick is posted and not yet run
  bool cut_ = false;                       // the drain deadline cut requests in flight
  int inotify_fd_ = -1;
  int lock_fd_ = -1;
  std::atomic<bool> draining_{false};     // read by the admin port
  std::atomic<bool> ready_{false};        // the spool is recovered: jobs are taken
  std::string admin_token_;               // admin_token_file's token; set before the port opens
  std::vector<std::string> admin_hosts_;  // admin_hosts; set before the port opens
  service_notifier notifier_;             // systemd's Type=notify (no-op without NOTIFY_SOCKET)
  steady::time_point watchdog_due_{};
  steady::time_point drain_deadline_{};
  steady::time_point epoch_ = steady::now();

  // One subscription connection per subscription and credentials, shared by
  // the jobs naming it (before jobs_: their stages leave it as they go).
  std::map<std::string, std::unique_ptr<subscription_hub>> hubs_;

  mutable std::mutex jobs_mutex_;
  std::vector<std::shared_ptr<daemon_job>> jobs_;  // waiting and running
  std::deque<finished_job> finished_;              // the last 100, for /jobs
  std::map<std::string, std::unique_ptr<account>> accounts_;
  std::map<std::string, connection_budget> budgets_;  // by endpoint URL (supervisor only)
  // By endpoint, TLS settings and proxy: the connections and the trust
  // store the jobs to it share.
  std::map<std::string, std::shared_ptr<net::connection_pool>> pools_;
  std::map<std::string, std::shared_ptr<net::tls_client>> tls_contexts_;
  std::set<std::pair<std::string, fs::file_time_type>> known_valid_;  // waiting in incoming/

  std::mutex metrics_mutex_;
  std::map<std::string, std::uint64_t> requests_by_outcome_;
  std::map<std::string, std::uint64_t> jobs_finished_by_state_;
  std::array<std::uint64_t, 3> devices_finished_{};  // by status, of jobs that ended
  std::uint64_t retries_finished_ = 0;
  std::uint64_t budget_refusals_finished_ = 0;
  double rate_wait_finished_s_ = 0;
  prometheus::histogram latency_{
      {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  prometheus::histogram batch_sizes_{{1, 10, 25, 50, 100, 200, 300, 400, 500, 1000}};
  // Delivery acknowledgements: outcomes as they are decided, the ack
  // latency, the jobs that ended's message counts, the subscriptions' state.
  std::array<std::uint64_t, 3> deliveries_{};  // delivered, delivery_failed, no_ack
  prometheus::histogram ack_latency_{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}};
  delivery_counts ack_messages_finished_;
  struct subscription_figures {
    std::string label;
    bool attached = false;
    std::uint64_t connections = 0, held = 0;
    ack_router::counts totals;
  };
  std::vector<subscription_figures> subscriptions_;
};

}  // namespace fleetcast::app::daemon_detail
