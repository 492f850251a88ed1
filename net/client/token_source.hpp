// token_source: the Authorization value for a job, from a file (re-read
// when asked, so an outside agent can rotate it), an environment variable,
// or a command's standard output (async_token_command: a child process that
// never blocks the engine). The token never appears in a message.
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <boost/asio/awaitable.hpp>

#include <sys/types.h>
#include <cstdint>
#include <string>
#include <string_view>

namespace fleetcast::net {

class token_source {
 public:
  explicit token_source(auth_config config) : config_(std::move(config)) {}

  // Reads the token (again) from a file or the environment (a command:
  // async_token_command). Throws std::runtime_error naming the source and
  // why, never the token.
  std::string fetch();
  bool is_command() const noexcept { return config_.kind == auth_config::source::token_command; }
  const auth_config& config() const noexcept { return config_; }

  // For a token file: whether it changed (modified, replaced) since the last
  // fetch(); always false for the other sources.
  bool file_changed() const;

  // Renewal (auth.refresh_token_file or _env): the refresh token now (a
  // refreshed one once there is one); throws like fetch().
  bool refreshes() const noexcept { return config_.refreshes(); }
  std::string refresh_token();
  // Keeps a refreshed pair: each written back to its file (a temporary
  // file, mode 0600, renamed over it), or in memory for the environment;
  // fetch() gives the new access token from then on. The error, or "".
  std::string store(const std::string& access, const std::string& refresh);

 private:
  struct file_identity {
    long long mtime_ns = 0, size = 0, inode = 0;
    friend bool operator==(const file_identity&, const file_identity&) = default;
  };
  file_identity identity() const;

  auth_config config_;
  file_identity seen_;
  std::string access_memory_, refresh_memory_;  // refreshed, from the environment
};

// A running token command, so that a cancel or a drain can end it.
struct token_command_control {
  pid_t group = 0;  // the child's process group while it runs
  bool killed = false;
  // Kills the whole group now (the child and anything it left behind).
  void kill() noexcept;
};

// Runs auth.token_command as a child: the default signal mask and
// dispositions, no descriptor but stdin, stdout (a pipe) and stderr, its own
// process group. Done when the child exits (a child it leaves holding stdout
// is killed with its group), or killed with its group at
// auth.command_timeout_ms or by `control.kill()`. Returns the token, trimmed,
// or sets `error` naming the command and its exit status, signal or
// timeout, never its output. Polls every 10 ms on the caller's executor.
boost::asio::awaitable<std::string> async_token_command(const auth_config& config,
                                                        token_command_control& control,
                                                        std::string& error);

// A secret (a token, an AccessKey or AccessSecret) from `file`, or when it
// is empty from the variable `env`, surrounding whitespace dropped. False
// with `error` naming FIELD_file or FIELD_env and why, never the secret.
bool read_secret(const std::string& file, const std::string& env, std::string_view field,
                 std::string& out, std::string& error);

// The checks every token passes (one line of printable ASCII, at most
// max_token_bytes); an error text or "".
inline constexpr std::size_t max_token_bytes = 16 * 1024;
std::string check_token(const std::string& token);

}  // namespace fleetcast::net
