// amqp_ack_receiver: the platform's message subscription over AMQP 1.0 and
// TLS (api/SUBSCRIPTION.md), with Qpid Proton's sans-io connection driver
// on our Asio loop (amqp_pump). Per connection: a fresh SASL PLAIN login
// (amqp_login), the Open frame's hostname and idle timeout as configured,
// one receiving link on the configured source address, which must be
// attached within 15 s. Each message's body goes to the handler; the
// message is accepted (acknowledged) only after the handler returned and
// the owner's sync hook made what it recorded durable (one sync for all
// the messages of a burst): one not acknowledged is delivered again after a
// reconnect. A message over max_message_bytes is unreadable (its body is
// not kept). Connections that fail or drop are made again with backoff
// (1 s doubling to 30 s; 100 ms after a connection whose link was attached).
#pragma once

#include <fleetcast/core/job/job.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include "net/acks/ndjson_ack_reader.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fleetcast::net {

inline constexpr std::size_t max_message_bytes = 1 << 20;

struct amqp_receiver_config {
  amqp_acks_config amqp;
  std::string access_key, access_secret;  // read from their files or the environment
  std::shared_ptr<tls_client> tls;        // the trust for the subscription's certificate
  bool verify = true;                     // host name checked (tls.verify)
  std::uint32_t connect_timeout_ms = 5000;
};

class amqp_ack_receiver {
 public:
  amqp_ack_receiver(boost::asio::any_io_executor ex, amqp_receiver_config config,
                    subscription_handler on_message);
  ~amqp_ack_receiver();
  amqp_ack_receiver(const amqp_ack_receiver&) = delete;
  amqp_ack_receiver& operator=(const amqp_ack_receiver&) = delete;

  void start();
  // Ends the connection; no handler is called after it.
  void stop();
  // Instead of the handler and an acknowledgement as it returns: each
  // message goes to `h` with a tag, and is acknowledged when accept(tag) is
  // called, now or later (a subscription shared by several runs holds a
  // message until the run it is for has its ticket). Before start().
  using holding_handler = std::function<void(std::string_view body, std::uint64_t tag)>;
  void hold_messages(holding_handler h);
  // Acknowledges a held message; nothing when its connection has gone (the
  // server delivers it again on the next).
  void accept(std::uint64_t tag);
  // Acknowledges it once the sync hook has run after this call (batched:
  // one sync for every message accepted this way before the loop turns).
  void accept_after_sync(std::uint64_t tag);
  // What makes recorded outcomes durable (fdatasync of the journal): "" when
  // done, else why not, and then nothing is acknowledged (the server keeps
  // it). Before start(); without one, accept_after_sync is accept.
  void on_sync(std::function<std::string()> sync);
  // Messages acknowledged so far, and syncs run (tests: no acknowledgement
  // without a sync before it).
  std::uint64_t settled() const noexcept;
  std::uint64_t syncs() const noexcept;
  // Called on the executor when a link is attached (error "") and when a
  // connection fails (its error); `refused` when the server refused the
  // login, which trying again will not change.
  void on_state(std::function<void(const std::string& error, bool refused)> f);

  std::uint64_t connections() const noexcept;  // made (TLS and AMQP open)
  std::uint64_t messages() const noexcept;     // received and acknowledged
  bool attached() const noexcept;              // a link is attached now
  // The last failure ("" while none): what the server or the network said,
  // never a credential.
  const std::string& last_error() const noexcept;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// Reads the AccessKey and AccessSecret the job names (file or environment;
// surrounding whitespace dropped). False with `error` naming the source.
bool read_amqp_credentials(const amqp_acks_config& amqp, std::string& key, std::string& secret,
                           std::string& error);

}  // namespace fleetcast::net
