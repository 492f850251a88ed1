// operator_act: what an operator asks of a running rollout from outside it
// (`fleetcast approve|pause|continue DIR`, or the daemon's admin port), and
// how the request and its outcome are written in the output folder:
//   DIR/.requests/ID.json   one request, written aside and renamed in;
//                           the run takes it within a tick, then removes it
//   DIR/operator.ndjson     every request's outcome, one line each, with who
//                           asked and when: the folder's record of acts
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

enum class operator_act : std::uint8_t {
  approve,  // the phase waiting for an approval goes on
  pause,    // nothing more is sent until a continue; requests in flight finish
  resume,   // "continue": sending goes on where it paused
};
std::string_view to_string(operator_act a) noexcept;  // "approve", "pause", "continue"
std::optional<operator_act> parse_operator_act(std::string_view word) noexcept;

struct act_request {
  std::string id;  // unique: the outcome line names it
  operator_act act = operator_act::approve;
  std::string by;  // who asked: "user@host (uid N)", "admin port ..."
  std::string at;  // when, ISO 8601 UTC
};

// What came of a request.
struct act_result {
  bool applied = false;
  std::string text;  // what it did, or why not
};

// A request file's text (one JSON object and a newline).
std::string to_json(const act_request& r);
// Parses a request file; nullopt with `error` set when it is not one.
std::optional<act_request> parse_act_request(std::string_view text, std::string& error);
// operator.ndjson's line for a request's outcome (with its newline), at
// `at` (ISO 8601 UTC).
std::string outcome_line(const act_request& r, const act_result& result, std::string_view at);

}  // namespace fleetcast
