// The daemon's spool (see daemon_service.hpp): its folders, recovery after a
// crash, claims, where an ended job goes and why (core/daemon/spool_rules.hpp
// decides), cancel and resume requests, progress events.
#include "app/daemon_service.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include <fleetcast/core/job/job_parser.hpp>

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

namespace fleetcast::app::daemon_detail {

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
  out << secret_registry::process().redacted(text);  // a reason may quote a peer
  out.flush();
  return static_cast<bool>(out);
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
  std::error_code ec;
  if (fs::file_size(path, ec) > max_job_file_bytes && !ec) return true;  // refused at its start
  std::string text, error;
  if (!read_text_file(path.string(), text, error)) return false;  // gone: taken by someone else
  const auto as_dropped = (spool_ / "incoming" / path.filename()).string();
  auto parsed = parse_job(text, as_dropped);
  check_window_now(parsed);  // an ended window: refused at once too
  if (parsed.job) {
    if (known_valid_.size() > 1'000'000) known_valid_.clear();
    known_valid_.insert(key);
    return false;
  }
  return true;
}

void daemon_service::claim_incoming() {
  if (draining_) return;
  // A large incoming/ must never become the loop's whole work: with no
  // slot free, the files of the last listing not checked yet are checked a
  // few per turn, and the folder is listed again only once it changed.
  bool full_now;
  {
    std::lock_guard lock(jobs_mutex_);
    full_now = jobs_.size() >= config_.max_jobs;
  }
  std::error_code ec;
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  const auto changed = fs::last_write_time(spool_ / "incoming", ec);
  if (full_now && !incoming_backlog_.empty()) {
    files = std::move(incoming_backlog_);
  } else if (full_now && !ec && changed == incoming_listed_ &&
             steady::now() - incoming_listed_at_ <
                 std::chrono::milliseconds(config_.poll_interval_ms)) {
    return;  // nothing came or went since every file of it was checked
  } else {
    incoming_listed_ = ec ? fs::file_time_type{} : changed;
    incoming_listed_at_ = steady::now();  // (a change within the clock's tick: the poll sees it)
    for (const auto& e : fs::directory_iterator(spool_ / "incoming", ec)) {
      if (is_job_file(e)) files.emplace_back(e.last_write_time(ec), e.path());
    }
    std::sort(files.begin(), files.end());  // oldest first
  }
  incoming_backlog_.clear();
  // Checking a job file reads and parses it: a few per turn of the loop, so
  // that thousands waiting never pause the jobs that run on it.
  std::size_t checked = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& [when, path] = files[i];
    bool full;
    {
      std::lock_guard lock(jobs_mutex_);
      full = jobs_.size() >= config_.max_jobs;
    }
    // A job that waits for a slot is checked early: an invalid one is
    // refused now (moved to failed/), not after the jobs ahead of it.
    if (full && !known_valid_.count({path.string(), when})) {
      if (++checked > jobs_checked_per_turn) {
        incoming_backlog_.assign(files.begin() + static_cast<std::ptrdiff_t>(i), files.end());
        wake();  // the rest on the next turn, after the loop's other work
        break;
      }
    }
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
  for (const auto& dj : ended) settle(*dj);
}

// A job's thread ended: release what it held, move its folder, count it.
void daemon_service::settle(daemon_job& dj) {
  budgets_[dj.endpoint_url].in_use -= dj.connections;
  {
    std::lock_guard lock(dj.acct->mutex);
    dj.acct->gate.leave(dj.member);
  }
  const auto& s = dj.summary;
  const auto to = destination_of(
      {s.state, dj.startup_error, dj.cancel_by_drain, dj.cancel_by_user, dj.failure});
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
                 .num("delivered", s.deliveries ? s.deliveries->delivered : 0)
                 .num("delivery_failed", s.deliveries ? s.deliveries->delivery_failed : 0)
                 .num("no_ack", s.deliveries ? s.deliveries->no_ack : 0)
                 .str("reason", reason));
  // The job leaves the running list and enters the totals at once, so that
  // counters never go back.
  std::scoped_lock lock(jobs_mutex_, metrics_mutex_);
  ++jobs_finished_by_state_[where == "running" ? "drained" : state];
  devices_finished_[0] += dj.progress.succeeded;  // this process's share (not a resumed run's)
  devices_finished_[1] += dj.progress.failed;
  devices_finished_[2] += dj.progress.skipped;
  retries_finished_ += dj.progress.retries;
  budget_refusals_finished_ += dj.progress.budget_refusals;
  rate_wait_finished_s_ += dj.progress.rate_wait_s;
  if (s.deliveries) ack_messages_finished_ += s.deliveries->messages;
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
    cancel_job(*target);
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
    const auto f = j->now(j->earlier_records);
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

}  // namespace fleetcast::app::daemon_detail
