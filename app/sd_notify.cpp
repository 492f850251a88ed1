#include "app/sd_notify.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

namespace fleetcast::app {

service_notifier::service_notifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  const std::size_t n = std::strlen(path);
  if (n >= sizeof address_.sun_path || (path[0] != '/' && path[0] != '@')) return;
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, path, n);
  if (path[0] == '@') address_.sun_path[0] = '\0';  // the abstract namespace
  length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec && (!pid || std::strtoll(pid, nullptr, 10) == ::getpid())) {
    const long long us = std::strtoll(usec, nullptr, 10);
    if (us > 0) watchdog_ = std::chrono::milliseconds(std::max(1LL, us / 2000));
  }
}

service_notifier::~service_notifier() {
  if (fd_ >= 0) ::close(fd_);
}

void service_notifier::send(std::string_view state) noexcept {
  if (fd_ < 0) return;
  [[maybe_unused]] const auto sent =
      ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&address_), length_);
}

}  // namespace fleetcast::app
