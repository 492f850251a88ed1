// The daemon speaks systemd's notify protocol: a test that plays the service
// manager binds $NOTIFY_SOCKET, starts `fleetcast daemon`, and reads
// READY=1, WATCHDOG=1 at half of WATCHDOG_USEC, then STOPPING=1 on SIGTERM.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace fs = std::filesystem;

// The next datagram within `ms`, or "" at the timeout.
std::string next_message(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return {};
  char buf[4096];
  const auto n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

TEST_CASE("the daemon tells the service manager: ready, alive, stopping") {
  const auto dir = fs::temp_directory_path() / fmt::format("fleetcast-notify-{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto socket_path = (dir / "notify.sock").string();
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  {
    FILE* config = std::fopen((dir / "daemon.json").c_str(), "w");
    REQUIRE(config);
    std::fputs(R"({"admin_listen": ""})", config);
    std::fclose(config);
  }

  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (!v.starts_with("NOTIFY_SOCKET=") && !v.starts_with("WATCHDOG_")) env_text.emplace_back(v);
  }
  env_text.push_back("NOTIFY_SOCKET=" + socket_path);
  env_text.push_back("WATCHDOG_USEC=400000");  // WATCHDOG=1 every 200 ms
  std::vector<char*> envp;
  for (auto& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string bin = FLEETCAST_BINARY, spool = (dir / "spool").string(),
                    config = (dir / "daemon.json").string(), log = (dir / "daemon.log").string();
  std::vector<std::string> args{bin, "daemon", "--spool", spool, "--config", config};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT, 0644);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), envp.data()) == 0);
  posix_spawn_file_actions_destroy(&actions);

  std::string first = next_message(fd, 10'000);
  CHECK(first.starts_with("READY=1\nSTATUS=serving "));
  int pings = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    if (next_message(fd, 500) == "WATCHDOG=1") ++pings;
  }
  CHECK(pings >= 4);  // every 200 ms for 1.5 s; a stalled loop would send none
  CHECK(pings <= 10);
  ::kill(pid, SIGTERM);
  std::string stopping;
  for (int i = 0; i < 20 && !stopping.starts_with("STOPPING=1"); ++i)
    stopping = next_message(fd, 500);
  CHECK(stopping.starts_with("STOPPING=1"));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(fd);
  fs::remove_all(dir);
}
