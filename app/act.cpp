// An operator's act on a running rollout's folder (see act.hpp).
#include "app/act.hpp"

#include "app/library_parts.hpp"
#include "app/say.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <thread>

namespace fleetcast::app {
namespace fs = std::filesystem;

int act_on_folder(operator_act act, const std::string& dir, const std::string& by,
                  double timeout_s) {
  const auto where = fmt::format("fleetcast {}", to_string(act));
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "rollout.json", ec)) {
    say("{}: {}: not a rollout's output folder (no rollout.json)\n", where, dir);
    return 2;
  }
  std::string holder;
  if (!folder_in_use(dir, holder)) {
    say("{}: {}: no rollout is running in it (no process holds its lock): {} acts on a "
        "running one\n",
        where, dir, to_string(act));
    return 2;
  }
  const auto request = make_request(act, by);
  std::string error;
  if (!submit_request(dir, request, error)) {
    say("{}: {}\n", where, error);
    return 2;
  }
  // The run takes requests about every 250 ms; its answer lands in operator.ndjson.
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  for (;;) {
    if (auto line = find_outcome(dir, request.id)) {
      simdjson::dom::parser parser;
      simdjson::dom::element e;
      bool applied = false;
      std::string_view result;
      const simdjson::padded_string padded(*line);
      if (parser.parse(padded).get(e) == simdjson::SUCCESS) {
        if (e["applied"].get_bool().get(applied) != simdjson::SUCCESS) applied = false;
        if (e["result"].get_string().get(result) != simdjson::SUCCESS) result = "(no result)";
      }
      say("{}: {}: {}{}\n", where, dir, applied ? "" : "not applied: ", result);
      return applied ? 0 : 1;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fs::remove(fs::path(dir) / ".requests" / (request.id + ".json"), ec);
  say("{}: {}: no answer from process {} within {} s (the request was withdrawn)\n", where, dir,
      holder, timeout_s);
  return 1;
}

}  // namespace fleetcast::app
