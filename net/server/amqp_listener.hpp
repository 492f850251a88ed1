// amqp_listener: the emulator's message subscription over AMQP 1.0 and TLS
// (Qpid Proton, driven by amqp_pump on a thread of its own), as the
// platform's is documented (api/SUBSCRIPTION.md): SASL PLAIN only, the
// login checked (access key, timestamp within 10 minutes, SHA-256
// password), the client's idle timeout within 30,000 to 60,000 ms, a
// receiving link attached within 15 s on the queue's address
// ("/amq/queue/<queue>" or "/queues/<queue>"), consume only. Messages wait
// in one queue for whoever has credit; one not yet accepted when its
// connection ends is delivered again. Faults: the connection dropped after
// every N messages sent on it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace fleetcast::net {

struct amqp_listener_config {
  std::string listen = "127.0.0.1:0";
  std::string access_key, access_secret;
  std::string queue = "a.1.fleetcast";
  std::uint32_t disconnect_after_messages = 0;  // 0 = never
  std::uint32_t disconnect_before_accept = 0;   // every Nth acceptance cuts the connection first
  bool echo_login = false;                      // a refused link's error quotes login and secret
};

struct amqp_listener_stats {
  std::uint64_t connections = 0, logins_refused = 0, links_refused = 0, attach_timeouts = 0;
  std::uint64_t sent = 0, accepted = 0, redelivered = 0, disconnects = 0, queued = 0;
};

class amqp_listener {
 public:
  // Binds and starts its thread; throws std::runtime_error naming what failed.
  amqp_listener(amqp_listener_config config, boost::asio::ssl::context& tls);
  ~amqp_listener();
  amqp_listener(const amqp_listener&) = delete;
  amqp_listener& operator=(const amqp_listener&) = delete;

  std::uint16_t port() const noexcept;
  // Queues a message body (thread-safe).
  void push(std::string body);
  amqp_listener_stats stats() const;
  void stop();

  struct impl;

 private:
  // The loop outlives the state its handlers share (destroying it releases
  // them, and with them the state).
  std::unique_ptr<boost::asio::io_context> ioc_;
  std::shared_ptr<impl> impl_;
};

}  // namespace fleetcast::net
