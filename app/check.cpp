#include "app/check.hpp"
#include "app/say.hpp"

#include <fleetcast/core/emulator/emulator_config.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include "app/library_parts.hpp"
#include "core/daemon/daemon_config.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>
#include <cstdio>

namespace fleetcast::app {
namespace {

// A job has a command; a daemon config has fields no other file has; the
// rest is read as an emulator config.
std::string kind_of(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::object top;
  if (parser.parse(text).get(top) != simdjson::SUCCESS) return "job";  // its parser says why
  constexpr std::array<std::string_view, 3> job_fields{"command", "endpoint", "devices"};
  constexpr std::array<std::string_view, 6> daemon_fields{"max_jobs",        "admin_listen",
                                                          "endpoints",       "default_endpoint",
                                                          "drain_timeout_s", "poll_interval_ms"};
  for (auto field : top) {
    for (auto f : job_fields)
      if (field.key == f) return "job";
  }
  for (auto field : top) {
    for (auto f : daemon_fields)
      if (field.key == f) return "daemon";
  }
  return "emulator";
}

int report(const std::string& file, std::string_view kind, const std::vector<std::string>& errors) {
  if (errors.empty()) {
    fmt::print("{}: a valid {}\n", file,
               kind == "job"      ? "job file"
               : kind == "daemon" ? "daemon config"
                                  : "emulator config");
    return 0;
  }
  for (const auto& e : errors) say("{}\n", e);
  say("fleetcast check: {}: {} problem{} (read as a {} file)\n", file, errors.size(),
      errors.size() == 1 ? "" : "s", kind);
  return 2;
}

}  // namespace

int check(const std::string& file, const std::string& requested) {
  std::string text, error;
  if (!read_text_file(file, text, error)) {
    say("fleetcast check: {}\n", error);
    return 2;
  }
  const std::string kind = requested.empty() ? kind_of(text) : requested;
  std::vector<std::string> errors;
  if (kind == "job") {
    auto parsed = parse_job(text, file);
    if (auto notice = check_window_now(parsed); !notice.empty())
      say("fleetcast check: {}: {}\n", file, notice);
    for (const auto& e : parsed.errors) errors.push_back(e.describe(file));
  } else if (kind == "daemon") {
    auto parsed = parse_daemon_config(text);
    for (const auto& e : parsed.errors) errors.push_back(fmt::format("{}: {}", file, e));
  } else {
    auto parsed = parse_emulator_config(text, file);
    for (const auto& e : parsed.errors) errors.push_back(fmt::format("{}: {}", file, e));
  }
  return report(file, kind, errors);
}

}  // namespace fleetcast::app
