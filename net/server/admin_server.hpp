// admin_server: a small HTTP/1.1 server for a service's own operators
// (the daemon's /metrics, /healthz, /jobs and cancel calls). Plain HTTP; one
// thread of its own; keep-alive; requests are answered by a handler the owner
// gives, called on the server's thread, with the client's Authorization
// header and whether it is on loopback (core/daemon/admin_access.hpp decides).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fleetcast::net {

// At most this many connections are served at once (more are closed as
// they come), and each must bring a whole request within the deadline
// (the next one too: an idle keep-alive connection is closed after it).
inline constexpr std::size_t admin_max_connections = 64;
inline constexpr std::chrono::seconds admin_request_deadline{10};

struct admin_request {
  std::string method;               // "GET", "POST", ...
  std::string target;               // "/metrics", "/jobs/x/cancel"
  std::string authorization;        // the Authorization header, "" when absent
  bool client_on_loopback = false;  // the peer's address is 127.0.0.0/8 or ::1
  std::string origin;               // the Origin header (a browser's), "" when absent
  std::string host;                 // the Host header
  bool admin_header = false;        // X-Fleetcast-Admin was sent (a page cannot send it cross-site)
  std::string peer;                 // the client's address and port ("" when unknown)
};

struct admin_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool ask_bearer = false;  // a 401: WWW-Authenticate: Bearer
};

class admin_server {
 public:
  using handler = std::function<admin_response(const admin_request&)>;

  // Binds `listen` ("127.0.0.1:9464"; port 0 = any free one) and starts
  // serving. Throws std::runtime_error naming what failed.
  admin_server(const std::string& listen, handler h);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  std::uint16_t port() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::net
