// sd_notify: the service manager's notification protocol (systemd's
// Type=notify), without libsystemd: datagrams of "KEY=VALUE" lines to the
// AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@': the abstract
// namespace). READY=1 once the daemon takes jobs, STOPPING=1 when it
// drains, WATCHDOG=1 at half of $WATCHDOG_USEC.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include <sys/socket.h>
#include <sys/un.h>

namespace fleetcast::app {

class service_notifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (WATCHDOG_PID, when set, must be
  // this process); without NOTIFY_SOCKET every call does nothing.
  service_notifier();
  ~service_notifier();
  service_notifier(const service_notifier&) = delete;
  service_notifier& operator=(const service_notifier&) = delete;

  bool enabled() const noexcept { return fd_ >= 0; }
  void send(std::string_view state) noexcept;
  // How often WATCHDOG=1 is due (half the manager's timeout); none without one.
  std::optional<std::chrono::milliseconds> watchdog_every() const noexcept { return watchdog_; }

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t length_ = 0;
  std::optional<std::chrono::milliseconds> watchdog_;
};

}  // namespace fleetcast::app
