// Token sources (see token_source.hpp).
#include "net/token_source.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fleetcast::net {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  std::size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

std::string run_command(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("auth.token_command: cannot create a pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error(
        fmt::format("auth.token_command: cannot run {}: {}", argv[0], std::strerror(rc)));
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 1 << 20) break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(fmt::format("auth.token_command: {} failed (exit status {})", argv[0],
                                         WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return out;
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
  std::string token;
  switch (config_.kind) {
    case auth_config::source::token_file: {
      seen_ = identity();
      std::ifstream in(config_.token_file, std::ios::binary);
      if (!in) {
        throw std::runtime_error(fmt::format("auth.token_file: {}: cannot open: {}",
                                             config_.token_file, std::strerror(errno)));
      }
      std::ostringstream s;
      s << in.rdbuf();
      token = trimmed(std::move(s).str());
      if (token.empty())
        throw std::runtime_error(fmt::format("auth.token_file: {}: empty", config_.token_file));
      break;
    }
    case auth_config::source::token_env: {
      const char* v = std::getenv(config_.token_env.c_str());
      if (!v || !*v) {
        throw std::runtime_error(fmt::format("auth.token_env: {} is not set", config_.token_env));
      }
      token = trimmed(v);
      break;
    }
    case auth_config::source::token_command:
      token = trimmed(run_command(config_.token_command));
      if (token.empty()) {
        throw std::runtime_error(
            fmt::format("auth.token_command: {} printed no token", config_.token_command.front()));
      }
      break;
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    throw std::runtime_error(
        "the token spans several lines; an Authorization header cannot hold it");
  }
  return token;
}

}  // namespace fleetcast::net
