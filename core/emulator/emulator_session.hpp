// emulator_session: the emulator's handling of one connection's requests,
// bytes in and answer out, with no I/O: the server hands it each request and
// the time, and writes the reply it returns (after reply.delay_ms). It checks
// every rule and code of the reference page with core's own validation, plays
// the configured faults, executes device commands deterministically under the
// seed, and records them. One session per connection; not thread-safe itself.
#pragma once

#include <fleetcast/core/emulator/emulator_state.hpp>
#include <fleetcast/core/protocol/command.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcast {

inline constexpr std::string_view batch_control_path = "/v2/binding/enduserapi/batchControlDevice";

struct emulator_request {
  std::string_view method;
  std::string_view target;
  std::optional<std::string_view> authorization;
  std::string_view body;
  std::uint64_t connection_request = 1;  // 1-based position on its connection
  std::int64_t wall_ms = 0;              // the time of day (refreshed tokens' expirationTime)
};

struct emulator_reply {
  enum class kind { answer, reset };  // reset: drop the connection without answering
  kind what = kind::answer;
  int status = 200;
  bool close = false;               // answer with Connection: close, then close
  std::uint32_t retry_after_s = 0;  // Retry-After header when not 0
  std::uint32_t delay_ms = 0;       // wait this long before answering (latency, stall)
  std::string_view content_type = "application/json";
  std::string_view allow;  // Allow header (405)
};

std::string_view http_reason(int status) noexcept;

class emulator_session {
 public:
  explicit emulator_session(emulator_state& state);
  ~emulator_session();
  emulator_session(const emulator_session&) = delete;
  emulator_session& operator=(const emulator_session&) = delete;

  // Handles one request at `now_ms` (steady clock). The reply's body is
  // body() until the next call. Call answered() once the reply is written
  // (or the connection is gone).
  const emulator_reply& handle(const emulator_request& request, std::uint64_t now_ms);
  // A request the HTTP layer refused before it was whole (413, 431).
  const emulator_reply& refuse(int status);
  std::string_view body() const noexcept { return body_; }
  // The devices of the last request leave their gateways' in-flight counts.
  void answered();

 private:
  const emulator_reply& error(int status, std::int64_t code, std::string_view msg);
  std::string_view echo_;  // faults.echo_token: the request's Authorization
  std::string echo_ticket_, echo_msg_;
  const emulator_reply& execute(std::uint64_t request_id, std::uint64_t now_ms);
  const emulator_reply& refresh(const emulator_request& req, std::uint64_t now_ms);
  double chance(std::uint64_t request_id, std::uint64_t what) const noexcept;

  struct impl;
  std::unique_ptr<impl> impl_;
  emulator_state& state_;
  emulator_reply reply_;
  std::string body_;
  std::string failures_;
  std::string record_;
  std::string padded_;
  std::vector<std::pair<std::string, std::uint64_t>> gateways_;  // in flight for the last request
  // The last command validated, and the code it got (0 = valid).
  std::optional<command> last_command_;
  std::int64_t last_code_ = 0;
  std::string last_msg_;
};

}  // namespace fleetcast
