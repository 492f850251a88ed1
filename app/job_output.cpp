// A job's output folder (see job_output.hpp).
#include "app/job_output.hpp"

#include "core/result_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

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

// An append-only file written with write(2) (what is written survives a
// crash of the process), synced to disk as the policy says.
class append_file {
 public:
  append_file(const std::string& path, fsync_policy policy) : path_(path), policy_(policy) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  ~append_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  append_file(const append_file&) = delete;
  append_file& operator=(const append_file&) = delete;

  void write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    using mode = fsync_policy::mode;
    if (policy_.when == mode::none) return;
    const auto now = std::chrono::steady_clock::now();
    if (policy_.when == mode::interval &&
        now - last_sync_ < std::chrono::milliseconds(policy_.interval_ms))
      return;
    if (::fdatasync(fd_) != 0)
      throw std::runtime_error(
          fmt::format("{}: fdatasync failed: {}", path_, std::strerror(errno)));
    last_sync_ = now;
  }

 private:
  std::string path_;
  fsync_policy policy_;
  int fd_ = -1;
  std::chrono::steady_clock::time_point last_sync_{};
};

// results.ndjson: lines buffered per batch, written as the batch completes.
class results_writer final : public result_sink {
 public:
  results_writer(const std::string& path, fsync_policy policy) : file_(path, policy) {}
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

}  // namespace

struct job_output::impl {
  fs::path dir;
  index_set done, maybe_sent;
  run_summary before;
  std::optional<results_writer> results;
  std::optional<append_file> journal;
  std::string journal_line;

  // Keeps final results, drops the lines of devices a stop skipped.
  bool compact(const std::string& results_path, std::string& error) {
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
        error = fmt::format("{}: {}; cannot resume from it", results_path, reader.error());
        return false;
      }
      kept.flush();
      if (!kept) {
        error = fmt::format("{}: cannot write", kept_path);
        return false;
      }
    }
    std::error_code ec;
    fs::rename(kept_path, results_path, ec);
    if (ec) {
      error = fmt::format("{}: {}", results_path, ec.message());
      return false;
    }
    return true;
  }

  void read_journal(const std::string& journal_path) {
    std::ifstream journal_in(journal_path);
    std::string line;
    while (std::getline(journal_in, line)) {  // indices, comma-separated
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
};

job_output::job_output() : impl_(std::make_unique<impl>()) {}
job_output::~job_output() = default;

bool job_output::open(const std::string& dir, bool resume, fsync_policy policy,
                      std::string& error) {
  auto& s = *impl_;
  s.dir = dir;
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec) {
    error = fmt::format("output.dir: {}: {}", dir, ec.message());
    return false;
  }
  const auto results_path = (s.dir / "results.ndjson").string();
  const auto journal_path = (s.dir / "sent.journal").string();
  if (fs::exists(results_path)) {
    if (!resume) {
      error = fmt::format(
          "{} already holds results: continue it with --resume, or set another output.dir",
          results_path);
      return false;
    }
    if (!s.compact(results_path, error)) return false;
    s.read_journal(journal_path);
  }
  try {
    s.results.emplace(results_path, policy);
    s.journal.emplace(journal_path, policy);
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  return true;
}

void job_output::attach(net::rollout_options& options) {
  auto* s = impl_.get();
  options.already_done = [s](std::uint64_t i) { return s->done.contains(i); };
  options.maybe_sent = [s](std::uint64_t i) { return s->maybe_sent.contains(i); };
  options.before_send = [s](const batch& b) {
    s->journal_line.clear();
    for (std::size_t i = 0; i < b.size(); ++i) {
      fmt::format_to(std::back_inserter(s->journal_line), "{}{}", i ? "," : "", b.index(i));
    }
    s->journal_line += '\n';
    s->journal->write(s->journal_line);
  };
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
  summary.add_counts(s.before);  // totals over this run and the ones it resumed
  std::error_code ec;
  {
    std::ofstream out(s.dir / "summary.json", std::ios::binary | std::ios::trunc);
    out << summary.to_json();
  }
  std::string problem;
  {
    std::ifstream in(s.dir / "results.ndjson", std::ios::binary);
    std::fstream successes(s.dir / ".successes.part",
                           std::ios::in | std::ios::out | std::ios::trunc | std::ios::binary);
    std::fstream failures(s.dir / ".failures.part",
                          std::ios::in | std::ios::out | std::ios::trunc | std::ios::binary);
    std::ofstream out(s.dir / "result.json", std::ios::binary | std::ios::trunc);
    problem = write_merged_result(in, out, successes, failures);
  }
  fs::remove(s.dir / ".successes.part", ec);
  fs::remove(s.dir / ".failures.part", ec);
  return problem;
}

}  // namespace fleetcast::app
