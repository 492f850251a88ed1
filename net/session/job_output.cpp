// A job's output folder (see job_output.hpp).
#include "net/session/job_output.hpp"

#include "net/session/result_file.hpp"

#include "core/input/device_hash.hpp"
#include "core/output/result_log.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unordered_map>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace fleetcast::net {
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

std::string errno_text() {
  return std::strerror(errno);
}

// An append-only file written with write(2) (what is written survives a
// crash of the process), synced to disk as the policy says. A failed write
// is reported, never thrown: the caller decides (the run stops, failed).
class append_file {
 public:
  append_file(const std::string& path, fsync_policy policy) : path_(path), policy_(policy) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) error_ = fmt::format("{}: cannot open: {}", path, errno_text());
  }
  ~append_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  append_file(const append_file&) = delete;
  append_file& operator=(const append_file&) = delete;

  // False once any write or sync failed (error() says which and why).
  bool write(std::string_view data) {
    if (!error_.empty()) return false;
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = fmt::format("{}: write failed: {}", path_, errno_text());
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    using mode = fsync_policy::mode;
    if (policy_.when == mode::none) return true;
    const auto now = std::chrono::steady_clock::now();
    if (policy_.when == mode::interval &&
        now - last_sync_ < std::chrono::milliseconds(policy_.interval_ms))
      return true;
    if (::fdatasync(fd_) != 0) {
      error_ = fmt::format("{}: fdatasync failed: {}", path_, errno_text());
      return false;
    }
    last_sync_ = now;
    return true;
  }
  const std::string& error() const noexcept { return error_; }

 private:
  std::string path_;
  fsync_policy policy_;
  int fd_ = -1;
  std::string error_;
  std::chrono::steady_clock::time_point last_sync_{};
};

// What an earlier outcome of a device sent again leaves to its new line.
struct carried {
  std::uint32_t attempts = 0;
  bool uncertain = false;
};

// results.ndjson: lines buffered per batch, written as the batch completes.
// A device sent again gets its earlier attempts and uncertainty added.
class results_writer final : public result_sink {
 public:
  results_writer(const std::string& path, fsync_policy policy,
                 std::unordered_map<std::uint64_t, carried>& carry, result_file& merged)
      : file_(path, policy), carry_(carry), merged_(merged) {}
  void on_result(const device_result& r) override {
    if (!carry_.empty()) {
      if (auto it = carry_.find(r.index); it != carry_.end()) {
        device_result merged = r;
        merged.attempts += it->second.attempts;
        merged.uncertain = merged.uncertain || it->second.uncertain;
        carry_.erase(it);
        return add(merged);
      }
    }
    add(r);
  }
  void flush() override {
    if (buf_.empty()) return;
    file_.write(buf_);
    buf_.clear();
  }
  // A write of results.ndjson or of result.json's parts that failed (a
  // full disk): the run stops, resumable.
  std::string_view failure() const noexcept override {
    return file_.error().empty() ? std::string_view(merged_.error()) : file_.error();
  }
  std::uint64_t retries() const noexcept { return retries_; }

 private:
  void add(const device_result& r) {
    if (r.attempts > 1) retries_ += r.attempts - 1;
    append_result_line(buf_, r);
    merged_.add(r);
    if (buf_.size() > (1 << 20)) flush();
  }
  append_file file_;
  std::unordered_map<std::uint64_t, carried>& carry_;
  result_file& merged_;
  std::string buf_;
  std::uint64_t retries_ = 0;
};

// Writes `text` to `path` through a temporary file, synced and renamed: the
// old file stays whole until the new one is.
std::string replace_file(const fs::path& path, std::string_view text) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fmt::format("{}: cannot open: {}", tmp, errno_text());
  std::string error;
  while (!text.empty() && error.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = fmt::format("{}: write failed: {}", tmp, errno_text());
    if (n > 0) text.remove_prefix(static_cast<std::size_t>(n));
  }
  if (error.empty() && ::fdatasync(fd) != 0)
    error = fmt::format("{}: fdatasync failed: {}", tmp, errno_text());
  if (::close(fd) != 0 && error.empty())
    error = fmt::format("{}: close failed: {}", tmp, errno_text());
  std::error_code ec;
  if (error.empty()) {
    fs::rename(tmp, path, ec);
    if (ec) error = fmt::format("{}: {}", path.string(), ec.message());
  }
  if (!error.empty()) fs::remove(tmp, ec);
  return error;
}

std::uint64_t key_fingerprint(const pkdk_view& d) {
  return device_hash(d.product_key, d.device_key) | 1;  // never 0: 0 is "no result"
}

}  // namespace

struct job_output::impl {
  fs::path dir;
  int lock_fd = -1;
  index_set done, maybe_sent;
  // The keys' fingerprint of each earlier result by index (0: none), for verify().
  std::vector<std::uint64_t> kept_keys;
  std::uint64_t kept = 0;
  std::unordered_map<std::uint64_t, carried> carry;
  run_summary before;
  std::uint64_t journal_requests = 0;  // requests of the earlier runs
  std::optional<result_file> merged;   // result.json, as the results come
  std::optional<results_writer> results;
  std::optional<append_file> journal;
  std::string journal_line;
  std::uint64_t requests_now = 0;
  bool fresh = false;     // no results were there before this run
  std::string compacted;  // the kept results, written aside until commit()
  bool committed = false;
  bool created_dir = false;  // open() made the folder
  fsync_policy fsync{};

  ~impl() {
    std::error_code ec;
    if (!compacted.empty()) fs::remove(compacted, ec);  // a resume refused by verify()
    if (lock_fd >= 0) ::close(lock_fd);                 // releases the lock
  }

  // One process per folder: an flock held until this process ends.
  open_outcome lock(std::string& error) {
    const auto path = (dir / ".lock").string();
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) {
      error = fmt::format("{}: cannot open: {}", path, errno_text());
      return open_outcome::failed;
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      // The holder writes its PID just after it took the lock: give it a moment.
      std::string holder;
      for (int tries = 0; holder.empty() && tries < 50; ++tries) {
        if (tries > 0) ::usleep(2000);
        char buf[64] = {};
        const auto n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
        if (n > 0) holder.assign(buf, static_cast<std::size_t>(n));
      }
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      error = fmt::format(
          "output.dir {} is in use by {}: one process per output folder (wait for it, or stop "
          "it and resume)",
          dir.string(), holder.empty() ? "another process" : "process " + holder);
      ::close(lock_fd);
      lock_fd = -1;
      return open_outcome::refused;
    }
    const auto pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0) {
      error = fmt::format("{}: cannot write: {}", path, errno_text());
      return open_outcome::failed;
    }
    return open_outcome::ok;
  }

  // Keeps the final results, drops (and remembers) the lines of devices
  // that are sent again.
  open_outcome compact(const std::string& results_path, const resume_plan& plan,
                       std::string& error) {
    const auto kept_path = results_path + ".resume";
    std::error_code ec;
    fs::remove(kept_path, ec);
    std::ifstream in(results_path, std::ios::binary);
    append_file kept_file(kept_path, {});
    merged.emplace(dir);  // the kept results go into result.json too
    result_log_reader reader(in);
    device_result r;
    std::string buf;
    while (reader.next(r)) {
      if (r.index < kept_keys.size() && kept_keys[r.index] != 0) {
        error = fmt::format(
            "{}: two results for the record at index {}: the folder was written by two "
            "processes at once or edited; cannot resume from it",
            results_path, r.index);
        return open_outcome::refused;
      }
      if (r.index >= kept_keys.size())
        kept_keys.resize(std::max<std::size_t>(r.index + 1, kept_keys.size() * 2));
      kept_keys[r.index] = key_fingerprint(r.device);
      ++kept;
      if (plan.sends_again(r.reason)) {
        carry[r.index] = {r.attempts, r.uncertain};
        continue;
      }
      before.count(r);
      done.insert(r.index);
      append_result_line(buf, r);
      merged->add(r);
      if (buf.size() > (1 << 20)) {
        if (!kept_file.write(buf)) break;
        buf.clear();
      }
    }
    if (!buf.empty()) kept_file.write(buf);
    if (!reader.error().empty()) {
      error = fmt::format("{}: {}; cannot resume from it", results_path, reader.error());
      return open_outcome::refused;
    }
    if (!kept_file.error().empty()) {
      error = kept_file.error();
      return open_outcome::failed;
    }
    compacted = kept_path;  // put in place by commit(), once verify() passed
    return open_outcome::ok;
  }

  // The folder changes only from here on: the compacted results replace the
  // old ones, and the writers open.
  open_outcome commit(std::string& error) {
    const auto results_path = (dir / "results.ndjson").string();
    if (!compacted.empty()) {
      std::error_code ec;
      fs::rename(compacted, results_path, ec);
      if (ec) {
        error = fmt::format("{}: {}", results_path, ec.message());
        return open_outcome::failed;
      }
      compacted.clear();
    }
    if (!merged) merged.emplace(dir);
    results.emplace(results_path, fsync, carry, *merged);
    journal.emplace((dir / "sent.journal").string(), fsync);
    committed = true;
    if (!results->failure().empty() || !journal->error().empty()) {
      error = !results->failure().empty() ? std::string(results->failure()) : journal->error();
      return open_outcome::failed;
    }
    return open_outcome::ok;
  }

  void read_journal(const std::string& journal_path) {
    std::ifstream journal_in(journal_path);
    std::string line;
    while (std::getline(journal_in, line)) {  // one request a line: its indices
      if (line.empty()) continue;
      ++journal_requests;
      const char* p = line.data();
      const char* const end = p + line.size();
      while (p < end) {
        std::uint64_t index = 0;
        const auto [next, ec] = std::from_chars(p, end, index);
        if (ec == std::errc()) maybe_sent.insert(index);
        p = std::find(next, end, ',') + 1;
      }
    }
  }

  // The runs recorded by the last summary.json, and its batch size.
  void read_earlier_summary() {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.load((dir / "summary.json").string()).get(doc)) return;
    std::uint64_t batch = 0;
    if (!doc["batch_size"].get(batch)) before.batch_size = batch;
    simdjson::dom::array runs;
    if (doc["runs"].get(runs)) return;
    for (auto r : runs) {
      run_record rec;
      std::string_view state;
      double elapsed = 0;
      if (!r["state"].get(state)) {
        for (auto s :
             {job_state::completed, job_state::aborted, job_state::cancelled, job_state::failed}) {
          if (to_string(s) == state) rec.state = s;
        }
      }
      if (rec.state && !r["elapsed_s"].get(elapsed)) rec.elapsed_s = elapsed;
      if (r["devices"].get(rec.devices)) rec.devices = 0;
      if (r["requests"].get(rec.requests)) rec.requests = 0;
      before.runs.push_back(rec);
    }
  }
};

job_output::job_output() : impl_(std::make_unique<impl>()) {}
job_output::~job_output() = default;

open_outcome job_output::open(const std::string& dir, const output_request& request,
                              std::string& error) {
  auto& s = *impl_;
  s.dir = dir;
  std::error_code ec;
  s.created_dir = !fs::exists(s.dir, ec);
  fs::create_directories(s.dir, ec);
  if (ec) {
    error = fmt::format("output.dir: {}: {}", dir, ec.message());
    return open_outcome::failed;
  }
  if (auto o = s.lock(error); o != open_outcome::ok) return o;
  const auto results_path = (s.dir / "results.ndjson").string();
  const auto journal_path = (s.dir / "sent.journal").string();
  const auto manifest_path = s.dir / "rollout.json";
  const bool has_results = fs::exists(results_path);
  s.fresh = !has_results;
  if (has_results && !request.resume) {
    error = fmt::format(
        "{} already holds results: continue it with --resume, or set another output.dir",
        results_path);
    return open_outcome::refused;
  }
  if (has_results) {
    std::ifstream in(manifest_path, std::ios::binary);
    if (in) {
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto recorded = rollout_manifest::parse(text, error);
      if (!recorded) {
        error = fmt::format("{}: {}", manifest_path.string(), error);
        return open_outcome::refused;
      }
      const auto changed = recorded->differences(request.identity);
      if (!changed.empty()) {
        error = fmt::format("--resume refused: this is not the rollout {} holds; changed: {}", dir,
                            fmt::join(changed, "; "));
        return open_outcome::refused;
      }
      if (!request.identity.devices_sha256) {
        error = fmt::format(
            "--resume refused: the device list {} cannot be read twice (not a regular file), so "
            "it cannot be checked against the first run; write it to a file",
            request.identity.devices_source);
        return open_outcome::refused;
      }
    }
    if (auto o = s.compact(results_path, request.plan, error); o != open_outcome::ok) return o;
    s.read_journal(journal_path);
    s.read_earlier_summary();
  }
  if (!has_results || !fs::exists(manifest_path)) {
    if (auto problem = replace_file(manifest_path, request.identity.to_json()); !problem.empty()) {
      error = problem;
      return open_outcome::failed;
    }
  }
  s.fsync = request.fsync;
  if (has_results) return open_outcome::ok;  // verify() checks, then commits
  return s.commit(error);
}

bool job_output::needs_verify() const noexcept {
  return !impl_->committed;
}

open_outcome job_output::verify(device_stream& devices, std::string& error) {
  auto& s = *impl_;
  device_record record;
  record_kind kind;
  std::uint64_t records = 0, matched = 0, last_index = 0;
  while (devices.next(record, kind)) {
    ++records;
    const auto i = record.index;
    last_index = i + 1;
    if (i >= s.kept_keys.size() || s.kept_keys[i] == 0) continue;
    if (s.kept_keys[i] != key_fingerprint(record.device)) {
      error = fmt::format(
          "--resume refused: results.ndjson holds a result for index {} that does not name the "
          "device list's record {} ({}/{}): the list or the results were changed",
          i, i, record.device.product_key, record.device.device_key);
      return open_outcome::refused;
    }
    ++matched;
  }
  if (!devices.fatal_error().empty()) {
    error = "the device list cannot be read: " + devices.fatal_error();
    return open_outcome::refused;
  }
  if (matched != s.kept) {
    std::uint64_t first = 0;
    for (std::uint64_t i = 0; i < s.kept_keys.size(); ++i) {
      if (s.kept_keys[i] != 0 && i >= last_index) {
        first = i;
        break;
      }
    }
    error = fmt::format(
        "--resume refused: results.ndjson holds {} result{} for records the device list does not "
        "have (it has {} records; the first such index is {})",
        s.kept - matched, s.kept - matched == 1 ? "" : "s", records, first);
    return open_outcome::refused;
  }
  return s.commit(error);
}

void job_output::attach(net::rollout_options& options) {
  auto* s = impl_.get();
  if (!s->committed) {  // a caller that did not verify: as before verify() existed
    std::string error;
    s->commit(error);  // a writer's failure shows in sink()'s results
  }
  options.already_done = [s](std::uint64_t i) { return s->done.contains(i); };
  // A device sent again keeps what its result said; the others: whether a
  // journal entry says an earlier run may have sent it.
  options.maybe_sent = [s](std::uint64_t i) {
    if (!s->carry.empty()) {
      if (auto it = s->carry.find(i); it != s->carry.end()) return it->second.uncertain;
    }
    return s->maybe_sent.contains(i);
  };
  options.before_send = [s](const batch& b) -> std::string {
    s->journal_line.clear();
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (i) s->journal_line += ',';
      char buf[24];
      const auto r = std::to_chars(buf, buf + sizeof buf, b.index(i));
      s->journal_line.append(buf, r.ptr);
    }
    s->journal_line += '\n';
    if (!s->journal->write(s->journal_line)) return s->journal->error();
    ++s->requests_now;
    return {};
  };
}

void job_output::abandon() {
  auto& s = *impl_;
  if (s.fresh && s.requests_now == 0) {
    s.results.reset();
    s.merged.reset();
    s.journal.reset();
    std::error_code ec;
    for (const char* f : {"results.ndjson", "sent.journal", "rollout.json"})
      fs::remove(s.dir / f, ec);
    if (s.created_dir) {  // as if never started: the folder goes too (when empty)
      fs::remove(s.dir / ".lock", ec);
      fs::remove(s.dir, ec);
    }
  }
}

result_sink& job_output::sink() {
  return *impl_->results;
}

const run_summary& job_output::earlier() const noexcept {
  return impl_->before;
}

std::string job_output::finish(run_summary& summary) {
  auto& s = *impl_;
  s.results->flush();
  std::string problem(s.results->failure());
  if (problem.empty()) problem = s.journal->error();

  // This run's record, then the whole rollout's figures.
  run_record now{summary.state, summary.elapsed_s, summary.records, summary.requests};
  std::uint64_t recorded_requests = 0;
  for (const auto& r : s.before.runs) recorded_requests += r.requests;
  summary.runs = s.before.runs;
  if (s.journal_requests > recorded_requests) {  // a run that was killed left no summary
    summary.runs.push_back({std::nullopt, 0, 0, s.journal_requests - recorded_requests});
  }
  summary.runs.push_back(now);
  const auto batch_size = summary.requests ? summary.batch_size : s.before.batch_size;
  summary.add_counts(s.before);
  summary.requests = std::max(s.journal_requests, recorded_requests) + summary.requests;
  summary.retries = s.before.retries + s.results->retries();
  summary.batch_size = batch_size;
  summary.elapsed_s = 0;
  for (const auto& r : summary.runs) summary.elapsed_s += r.elapsed_s;

  if (problem.empty()) problem = s.merged->finish();
  if (!problem.empty()) {
    summary.state = job_state::failed;
    summary.runs.back().state = job_state::failed;
    summary.reason = "the outputs could not be written: " + problem;
  }
  if (auto p = replace_file(s.dir / "summary.json", summary.to_json()); !p.empty()) {
    if (problem.empty()) {
      summary.state = job_state::failed;
      summary.reason = "the outputs could not be written: " + p;
    }
    problem = problem.empty() ? p : problem + "; " + p;
  }
  return problem;
}

}  // namespace fleetcast::net
