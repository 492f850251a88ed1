// result.json as the run goes (see result_file.hpp).
#include "net/session/result_file.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fleetcast::net {

namespace fs = std::filesystem;

namespace {
constexpr std::uint64_t writeback_step = 64ULL << 20;
constexpr const char* merged_msg = "merged by fleetcast";

int open_empty(const fs::path& path, int flags) {
  return ::open(path.c_str(), flags | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}
}  // namespace

result_file::result_file(const fs::path& dir) : dir_(dir) {
  out_ = open_empty(dir_ / "result.json.tmp", O_WRONLY);
  failures_ = open_empty(dir_ / ".failures.part", O_RDWR);
  if (out_ < 0 || failures_ < 0) {
    error_ = fmt::format("result.json: cannot open its temporary files in {}: {}", dir_.string(),
                         std::strerror(errno));
    return;
  }
  write_all(out_, pkdk_result_merger::head(merged_msg), "result.json.tmp");
}

result_file::~result_file() {
  if (out_ >= 0) ::close(out_);
  if (failures_ >= 0) ::close(failures_);
  std::error_code ec;
  if (!done_) fs::remove(dir_ / "result.json.tmp", ec);
  fs::remove(dir_ / ".failures.part", ec);
}

bool result_file::write_all(int fd, std::string_view data, const char* what) {
  if (!error_.empty()) return false;
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error_ = fmt::format("result.json: writing {} in {} failed: {}", what, dir_.string(),
                           std::strerror(errno));
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (fd == out_) written_ += static_cast<std::uint64_t>(n);
  }
  return true;
}

void result_file::drain() {
  write_all(out_, merger_.successes(), "result.json.tmp");
  write_all(failures_, merger_.failures(), ".failures.part");
  merger_.successes().clear();
  merger_.failures().clear();
  if (error_.empty() && written_ - synced_ >= writeback_step) {
    // Start the disk's work now (asynchronous: no waiting here).
    ::sync_file_range(out_, static_cast<off_t>(synced_), static_cast<off_t>(written_ - synced_),
                      SYNC_FILE_RANGE_WRITE);
    synced_ = written_;
  }
}

std::string result_file::finish() {
  drain();
  if (out_ < 0) return error_;
  write_all(out_, pkdk_result_merger::between(), "result.json.tmp");
  // The failures after the successes: usually few, copied in the kernel
  // where it can (read and written where it cannot).
  off_t from = 0;
  const off_t size = error_.empty() ? ::lseek(failures_, 0, SEEK_END) : 0;
  bool in_kernel = true;
  std::string chunk;
  while (error_.empty() && from < size) {
    if (in_kernel) {
      const ssize_t n = ::copy_file_range(failures_, &from, out_, nullptr,
                                          static_cast<std::size_t>(size - from), 0);
      if (n > 0) {
        written_ += static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      in_kernel = false;  // EXDEV, EINVAL, ENOSYS, ...: by hand from here
    }
    chunk.resize(static_cast<std::size_t>(std::min<off_t>(size - from, 1 << 20)));
    const ssize_t n = ::pread(failures_, chunk.data(), chunk.size(), from);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = fmt::format("result.json: reading the failures in {} failed: {}", dir_.string(),
                           n < 0 ? std::strerror(errno) : "the file ended early");
      break;
    }
    write_all(out_, std::string_view(chunk.data(), static_cast<std::size_t>(n)), "result.json.tmp");
    from += n;
  }
  write_all(out_, pkdk_result_merger::tail(), "result.json.tmp");
  if (error_.empty() && ::fdatasync(out_) != 0)
    error_ = fmt::format("result.json: fdatasync: {}", std::strerror(errno));
  if (::close(out_) != 0 && error_.empty())
    error_ = fmt::format("result.json: close: {}", std::strerror(errno));
  out_ = -1;
  if (error_.empty()) {
    std::error_code ec;
    fs::rename(dir_ / "result.json.tmp", dir_ / "result.json", ec);
    if (ec) error_ = fmt::format("result.json: {}", ec.message());
    done_ = !ec;
  }
  return error_;
}

}  // namespace fleetcast::net
