#include "app/daemon_log.hpp"

#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/core/output/secret_registry.hpp>
#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>
#include <unistd.h>
#include <iterator>

namespace fleetcast::app {
namespace {

std::string utc_now() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return format_iso8601_utc(ms / 1000, static_cast<int>(ms % 1000));
}

}  // namespace

details& details::str(std::string_view key, std::string_view value) {
  comma();
  append_json_string(json_, key);
  json_ += ':';
  append_json_string(json_, value);
  return *this;
}

details& details::num(std::string_view key, double value) {
  comma();
  append_json_string(json_, key);
  fmt::format_to(std::back_inserter(json_), ":{}", value);
  return *this;
}

details& details::num(std::string_view key, std::uint64_t value) {
  comma();
  append_json_string(json_, key);
  fmt::format_to(std::back_inserter(json_), ":{}", value);
  return *this;
}

bool is_journal_stream(const char* journal_stream, int fd) {
  if (!journal_stream) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return fmt::format("{}:{}", static_cast<unsigned long long>(st.st_dev),
                     static_cast<unsigned long long>(st.st_ino)) == journal_stream;
}

json_log::json_log() : journal_(is_journal_stream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO)) {}

void json_log::write(std::string_view level, std::string_view job, std::string_view event,
                     const details& d) {
  std::string line;
  if (journal_) line = level == "error" ? "<3>" : level == "warn" ? "<4>" : "<6>";
  line += "{\"time\":";
  append_json_string(line, utc_now());
  line += ",\"level\":";
  append_json_string(line, level);
  line += ",\"job\":";
  append_json_string_or_null(line, job);
  line += ",\"event\":";
  append_json_string(line, event);
  line += ",\"details\":";
  line += d.json();
  line += "}\n";
  secret_registry::process().redact(line);  // whatever a peer echoed into a detail
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace fleetcast::app
