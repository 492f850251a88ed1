// daemon_log: the daemon's JSON lines on stderr (time, level, job, event,
// details), whole lines from any thread, with journald priorities.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

namespace fleetcast::app {

// Fields of a log line's "details" object.
class details {
 public:
  details& str(std::string_view key, std::string_view value);
  details& num(std::string_view key, double value);
  details& num(std::string_view key, std::uint64_t value);
  std::string json() const { return "{" + json_ + "}"; }

 private:
  void comma() {
    if (!json_.empty()) json_ += ',';
  }
  std::string json_;
};

// When stderr is the journal (JOURNAL_STREAM names stderr's device and
// inode, as systemd sets it), each line starts with its syslog priority
// ("<3>" error, "<4>" warn, "<6>" info), so that `journalctl -p err` works.
class json_log {
 public:
  json_log();
  void write(std::string_view level, std::string_view job, std::string_view event,
             const details& d = {});
  bool to_journal() const noexcept { return journal_; }

 private:
  std::mutex mutex_;
  bool journal_ = false;
};

// Whether JOURNAL_STREAM ("DEVICE:INODE") names the file descriptor `fd`.
bool is_journal_stream(const char* journal_stream, int fd);

}  // namespace fleetcast::app
