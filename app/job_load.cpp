// Loading a job file for a command (see job_load.hpp).
#include "app/job_load.hpp"
#include "app/say.hpp"

#include <fleetcast/core/job/job_parser.hpp>
#include "net/session/job_files.hpp"

namespace fleetcast::app {

using net::read_text_file;
using net::sendable_problems;

std::optional<job> load_job(const std::string& job_file, bool check_sendable) {
  std::string text, error;
  if (!read_text_file(job_file, text, error)) {
    say("fleetcast: {}\n", error);
    return std::nullopt;
  }
  auto parsed = parse_job(text, job_file);
  if (auto notice = check_window_now(parsed); !notice.empty())
    say("fleetcast: {}: {}\n", job_file, notice);
  if (!parsed.job) {
    for (const auto& e : parsed.errors) say("fleetcast: {}\n", e.describe(job_file));
    std::size_t problems = parsed.errors.size();
    if (check_sendable && parsed.partial) {
      // The same round: the device list and the token, where their fields are right.
      bool devices_ok = true, auth_ok = true;
      for (const auto& e : parsed.errors) {
        devices_ok = devices_ok && !e.field.starts_with("devices");
        auth_ok = auth_ok && !e.field.starts_with("auth");
      }
      for (const auto& p : sendable_problems(*parsed.partial, std::nullopt, devices_ok, auth_ok)) {
        say("fleetcast: {}: {}\n", job_file, p);
        ++problems;
      }
    }
    say("fleetcast: the job is invalid ({} problem{}); nothing was sent\n", problems,
        problems == 1 ? "" : "s");
  }
  return std::move(parsed.job);
}

}  // namespace fleetcast::app
