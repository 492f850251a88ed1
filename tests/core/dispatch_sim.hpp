// dispatch_sim: drives the dispatcher (core/dispatch) the way the net driver
// does, on a simulated clock and a simulated network: connections that
// connect after a latency, requests answered by the emulator's own request
// handling (core/emulator/emulator_session) or by a test's script, answers that
// arrive after a delay. No socket, no sleep: a run of simulated minutes
// takes milliseconds. Every request written is recorded with its time,
// connection, token and devices.
#pragma once

#include <fleetcast/core/emulator/emulator_state.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include "core/dispatch/dispatcher.hpp"
#include "core/emulator/emulator_session.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast::testing {

// One request as the server saw it.
struct sim_request {
  std::int64_t at_us = 0;
  unsigned lane = 0;
  std::string token;
  std::vector<std::string> device_keys;  // in the request's order
  std::string body;
  std::uint64_t nth = 0;  // 1-based among all requests
};

// What the server does with one request (a test's script).
struct sim_answer {
  bool reset = false;  // no answer: the connection dies
  int status = 200;
  bool close = false;  // Connection: close
  std::string retry_after;
  std::string body;
  std::int64_t delay_us = 2'000;  // from the write to the answer
};

// One result as the sink saw it (views copied).
struct sim_result {
  std::uint64_t index = 0;
  std::string device_key;
  outcome_reason reason = outcome_reason::accepted;
  std::optional<std::int64_t> code;
  std::string msg, ticket;
  std::uint32_t attempts = 0;
  bool uncertain = false;
};

// `n` devices p1/d0 .. p1/d{n-1} as CSV.
std::string sim_devices(std::size_t n, std::string_view product = "p1");
// A job over the minimal one with `extra` members (raw JSON, no braces).
job sim_job(std::string_view extra);
// A body of the platform's answer: every device succeeded.
std::string sim_success_body(const sim_request& r);
// A body with only a code and message (no lists).
std::string sim_code_body(std::int64_t code, std::string_view msg);

class dispatch_sim {
 public:
  dispatch_sim(job j, std::string devices_csv, emulator_config server = {});
  ~dispatch_sim();

  // Set before run().
  dispatch_hooks hooks;
  // A scripted server; nullopt: the emulator's session answers.
  std::function<std::optional<sim_answer>(const sim_request&)> script;
  // Whether a connection attempt succeeds (the attempt's 1-based number).
  std::function<bool(unsigned lane, std::uint64_t attempt)> connect_ok;
  // Tokens the machine fetches: the token, or nullopt for a failed fetch.
  std::function<std::optional<std::string>(std::uint64_t fetch)> fetch_token;
  std::string first_token = "t1";  // empty: the first action is a fetch
  std::int64_t token_fetch_us = 1'000;
  std::int64_t connect_us = 1'000;
  std::int64_t answer_us = 2'000;                            // the emulator's answers
  std::int64_t wall_start_us = 1'800'000'000LL * 1'000'000;  // the wall clock at start
  // Things a test does at a time: cancel, a hard cancel, a rotated token.
  std::multimap<std::int64_t, std::function<void(dispatcher&)>> at;

  run_summary run(std::int64_t limit_us = 3'600'000'000LL);

  dispatcher& machine() { return *d_; }
  const phase_plan* plan() const { return plan_.get(); }
  emulator_state& server_state() { return server_; }
  std::int64_t now_us() const { return now_; }

  const std::vector<sim_request>& requests() const { return requests_; }
  const std::vector<sim_result>& results() const { return results_; }
  std::vector<dispatch_progress> progress;  // one per tick
  // The largest number of requests one connection had written and not yet
  // read at once.
  std::size_t peak_window = 0;
  std::uint64_t connects = 0, token_fetches = 0;
  std::vector<std::pair<std::int64_t, bool>> token_outcomes;  // when, ok
  std::vector<std::string> events;  // "attempt <outcome> <n>" from on_attempt

  // Every input index 0..n-1 has exactly one result.
  void check_exactly_once(std::size_t n) const;
  // How many requests carried each device key.
  std::map<std::string, int> sends() const;
  const sim_result* result_of(std::string_view device_key) const;

 private:
  struct lane;
  struct sink_impl;
  void act(unsigned i);
  void apply_effects();
  void complete(unsigned i);

  job job_;
  std::string csv_;
  std::istringstream in_;
  device_stream stream_;
  emulator_state server_;
  std::unique_ptr<sink_impl> sink_;
  std::unique_ptr<phase_plan> plan_;  // a job with a canary or phases: its census
  std::unique_ptr<dispatcher> d_;
  std::vector<std::unique_ptr<lane>> lanes_;
  std::vector<sim_request> requests_;
  std::vector<sim_result> results_;
  std::int64_t now_ = 0;
  std::optional<std::int64_t> token_at_;  // a fetch under way completes then
  std::uint64_t connect_attempts_ = 0;
};

// Helpers of the dispatcher tests.
inline std::size_t count_reason(const dispatch_sim& s, outcome_reason r) {
  return static_cast<std::size_t>(std::count_if(s.results().begin(), s.results().end(),
                                                [&](const auto& x) { return x.reason == r; }));
}

// The most requests written in any window of `width` µs.
inline std::size_t peak_in_window(const dispatch_sim& s, std::int64_t width) {
  std::size_t peak = 0, first = 0;
  const auto& r = s.requests();
  for (std::size_t i = 0; i < r.size(); ++i) {
    while (r[i].at_us - r[first].at_us >= width) ++first;
    peak = std::max(peak, i - first + 1);
  }
  return peak;
}

inline std::size_t count_events(const dispatch_sim& s, std::string_view prefix) {
  return static_cast<std::size_t>(std::count_if(
      s.events.begin(), s.events.end(), [&](const auto& e) { return e.starts_with(prefix); }));
}

}  // namespace fleetcast::testing
