// Token sources (see token_source.hpp).
#include "net/client/token_source.hpp"

#include <fleetcast/core/output/secret_registry.hpp>

#include "core/protocol/token_refresh.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fleetcast::net {
namespace {

namespace asio = boost::asio;

std::string trimmed(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

// Starts argv with stdout on a pipe; the pid, or -1 with `error` set.
pid_t spawn_child(const std::vector<std::string>& argv, int& out_fd, std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // nothing else is inherited
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: killed together
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    error = fmt::format("cannot run {}: {}", argv[0], std::strerror(rc));
    return -1;
  }
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  out_fd = fds[0];
  return pid;
}

// Reads what the pipe holds now; false at its end.
bool read_available(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (out.size() < (1 << 20)) out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace

token_source::file_identity token_source::identity() const {
  struct stat st {};
  if (::stat(config_.token_file.c_str(), &st) != 0) return {};
  return {static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          static_cast<long long>(st.st_size), static_cast<long long>(st.st_ino)};
}

bool token_source::file_changed() const {
  return config_.kind == auth_config::source::token_file && identity() != seen_;
}

std::string token_source::fetch() {
  if (!access_memory_.empty()) return access_memory_;
  if (config_.kind == auth_config::source::token_command)
    throw std::logic_error("a token command runs as async_token_command");
  const bool from_file = config_.kind == auth_config::source::token_file;
  if (from_file) seen_ = identity();
  std::string token, error;
  if (!read_secret(from_file ? config_.token_file : std::string(), config_.token_env, "auth.token",
                   token, error))
    throw std::runtime_error(error);
  if (auto bad = check_token(token); !bad.empty()) throw std::runtime_error(bad);
  return token;
}

std::string token_source::refresh_token() {
  if (!refresh_memory_.empty()) return refresh_memory_;
  std::string token, error;
  if (!read_secret(config_.refresh_token_file, config_.refresh_token_env, "auth.refresh_token",
                   token, error))
    throw std::runtime_error(error);
  if (token.find_first_of("\r\n") != std::string::npos)
    throw std::runtime_error("the refresh token spans several lines");
  return token;
}

namespace {
// Writes `text` to `path` through a temporary file beside it (mode 0600,
// flushed to the disk), renamed over it. The error, or "".
std::string replace_secret_file(const std::string& path, const std::string& text,
                                const char* what) {
  const std::string tmp = path + ".fleetcast-tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fmt::format("{}: {}: {}", what, tmp, std::strerror(errno));
  const std::string line = text + "\n";
  std::string_view rest = line;
  bool ok = ::fchmod(fd, 0600) == 0;
  while (ok && !rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) rest.remove_prefix(static_cast<std::size_t>(n));
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ok = ::close(fd) == 0 && ok;
  if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) return {};
  const std::string why = std::strerror(ok ? errno : saved);
  ::unlink(tmp.c_str());
  return fmt::format("{}: {}: {}", what, path, why);
}
}  // namespace

std::string token_source::store(const std::string& access, const std::string& refresh) {
  // Both are checked before either replaces what works now: an unusable
  // pair from the endpoint leaves the good files as they are.
  if (auto bad = check_token(access); !bad.empty()) return "the refreshed access token: " + bad;
  if (!refresh.empty())
    if (auto bad = check_token(refresh); !bad.empty()) return "the refreshed refresh token: " + bad;
  secret_registry::process().add(access);
  secret_registry::process().add(refresh);
  // The refresh token first: once it is kept, a crash leaves a usable pair.
  if (!refresh.empty()) {
    if (!config_.refresh_token_file.empty()) {
      if (auto e =
              replace_secret_file(config_.refresh_token_file, refresh, "auth.refresh_token_file");
          !e.empty())
        return e;
    } else {
      refresh_memory_ = refresh;
    }
  }
  if (config_.kind == auth_config::source::token_file) {
    if (auto e = replace_secret_file(config_.token_file, access, "auth.token_file"); !e.empty())
      return e;
    seen_ = identity();  // our own write is no outside rotation
  } else {
    access_memory_ = access;
  }
  return {};
}

bool read_secret(const std::string& file, const std::string& env, std::string_view field,
                 std::string& out, std::string& error) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      error = fmt::format("{}_file: {}: cannot open: {}", field, file, std::strerror(errno));
      return false;
    }
    std::ostringstream text;
    text << in.rdbuf();
    out = trimmed(std::move(text).str());
    if (out.empty()) error = fmt::format("{}_file: {}: empty", field, file);
  } else {
    const char* v = std::getenv(env.c_str());
    out = trimmed(v ? v : "");
    if (out.empty()) error = fmt::format("{}_env: {} is not set", field, env);
  }
  // From here on it may be sent: an echo of it is redacted everywhere.
  secret_registry::process().add(out);
  return !out.empty();
}

void token_command_control::kill() noexcept {
  killed = true;
  if (group > 0) ::kill(-group, SIGKILL);
}

std::string check_token(const std::string& token) {
  if (token.find_first_of("\r\n") != std::string::npos)
    return "the token spans several lines; an Authorization header cannot hold it";
  if (token.empty()) return "the token is empty";
  if (token.size() > max_token_bytes)
    return fmt::format("the token is {} bytes long; at most {} are taken", token.size(),
                       max_token_bytes);
  for (const char ch : token) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E)
      return "the token holds a byte that is not printable ASCII; a header value cannot hold it";
  }
  return {};
}

asio::awaitable<std::string> async_token_command(const auth_config& config,
                                                 token_command_control& control,
                                                 std::string& error) {
  const auto& name = config.token_command.front();
  int fd = -1;
  std::string spawn_error;
  const pid_t pid = spawn_child(config.token_command, fd, spawn_error);
  if (pid < 0) {
    error = fmt::format("auth.token_command: {}", spawn_error);
    co_return std::string();
  }
  control.group = pid;
  control.killed = false;
  asio::steady_timer tick(co_await asio::this_coro::executor);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(config.command_timeout_ms);
  std::string out;
  bool open = true, timed_out = false;
  int status = 0;
  for (;;) {
    if (open) open = read_available(fd, out);
    // Exited? (not reaped yet, so that its group id cannot be reused before
    // the group is killed below)
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid)
      break;
    if (control.killed) {
      ::kill(-pid, SIGKILL);
    } else if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      ::kill(-pid, SIGKILL);
    }
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (open) read_available(fd, out);
  ::kill(-pid, SIGKILL);  // whatever it left behind (e.g. a child holding stdout)
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(fd);
  control.group = 0;
  if (timed_out) {
    error = fmt::format(
        "auth.token_command: {} did not exit within {} ms (auth.command_timeout_ms); "
        "killed",
        name, config.command_timeout_ms);
    co_return std::string();
  }
  if (control.killed) {
    error = fmt::format("auth.token_command: {} was stopped (the job is stopping)", name);
    co_return std::string();
  }
  if (WIFSIGNALED(status)) {
    error = fmt::format("auth.token_command: {} was killed by signal {}", name, WTERMSIG(status));
    co_return std::string();
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = fmt::format("auth.token_command: {} failed (exit status {})", name,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    co_return std::string();
  }
  auto token = trimmed(std::move(out));
  if (token.empty()) {
    error = fmt::format("auth.token_command: {} printed no token", name);
  } else if (auto bad = check_token(token); !bad.empty()) {
    error = "auth.token_command: " + bad;
    token.clear();
  }
  co_return token;
}

}  // namespace fleetcast::net
