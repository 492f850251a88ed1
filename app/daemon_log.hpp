// daemon_log: the daemon's JSON lines on stderr (time, level, job, event,
// details), whole lines from any thread.
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

class json_log {
 public:
  void write(std::string_view level, std::string_view job, std::string_view event,
             const details& d = {});

 private:
  std::mutex mutex_;
};

}  // namespace fleetcast::app
