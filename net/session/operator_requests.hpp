// operator_requests: an operator's acts on a running rollout, carried
// through its output folder (core/output/operator_act.hpp): another process
// (`fleetcast approve|pause|continue DIR`, the daemon's admin port) writes a
// request into DIR/.requests; the session that holds the folder takes it
// within a tick, acts, and records the outcome, who asked and when in
// DIR/operator.ndjson, where the asker reads its answer.
#pragma once

#include <fleetcast/core/output/operator_act.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace fleetcast::net {

class operator_requests {
 public:
  explicit operator_requests(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // The requests waiting (at most 16 a call, oldest first by name), each
  // removed once read. A file that is not a request is removed and its
  // outcome recorded as refused (`refused` gets them).
  std::vector<act_request> take(std::vector<std::pair<act_request, act_result>>& refused);
  // Appends the outcome to operator.ndjson (at the time now); false with
  // `error` set when it cannot.
  bool record(const act_request& r, const act_result& result, std::string& error);

 private:
  std::filesystem::path dir_;
};

// A new request's id and time, `by` as given (empty: the user, host and uid).
act_request make_request(operator_act act, std::string by);
// Writes the request into DIR/.requests (aside, then renamed in).
bool submit_request(const std::filesystem::path& dir, const act_request& r, std::string& error);
// The outcome line of request `id` in DIR/operator.ndjson, once there.
std::optional<std::string> find_outcome(const std::filesystem::path& dir, const std::string& id);
// Whether a process holds the folder's lock (a rollout runs in it), from
// the kernel's table of locks; its PID in `holder`.
bool folder_in_use(const std::filesystem::path& dir, std::string& holder);

}  // namespace fleetcast::net
