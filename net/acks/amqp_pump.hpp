// amqp_pump: drives one Qpid Proton connection driver (the AMQP 1.0 engine,
// sans-io) over an Asio TLS stream, for the subscription's receiver and the
// emulator's listener alike. Bytes read go into the driver, bytes it has to
// send are written, its events go to the handler, its heartbeat deadline is
// a timer. The driver never owns a socket: Proton does the protocol, Asio
// the I/O and TLS (so Proton's own SASL layer sees an unencrypted transport
// and must be allowed PLAIN: the bytes are encrypted below it).
//
// Single-threaded: every call on the stream's executor.
#pragma once

#include <proton/connection_driver.h>
#include <proton/event.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>

namespace fleetcast::net {

class amqp_pump : public std::enable_shared_from_this<amqp_pump> {
 public:
  using stream_type = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  using event_handler = std::function<void(pn_event_t*)>;
  // Called once when the connection is over, with the transport's error
  // condition ("" for a clean close).
  using closed_handler = std::function<void(const std::string& error)>;

  amqp_pump(stream_type stream, event_handler on_event, closed_handler on_closed);
  ~amqp_pump();
  amqp_pump(const amqp_pump&) = delete;
  amqp_pump& operator=(const amqp_pump&) = delete;

  pn_connection_driver_t& driver() noexcept { return driver_; }
  pn_connection_t* connection() noexcept { return driver_.connection; }
  pn_transport_t* transport() noexcept { return driver_.transport; }
  stream_type& stream() noexcept { return stream_; }

  // Starts reading and writing (after the TLS handshake).
  void start();
  // Runs the events and the I/O the handler's changes call for (after it
  // changed the connection outside an event, e.g. a message to send).
  void pump();
  // Ends the connection now, as a network failure would (nothing more is
  // read or written; the closed handler says `why`).
  void abort(const std::string& why);
  bool closed() const noexcept { return closed_; }

 private:
  void read();
  void write();
  void feed();
  void schedule_tick();
  void finish();

  stream_type stream_;
  pn_connection_driver_t driver_{};
  event_handler on_event_;
  closed_handler on_closed_;
  boost::asio::steady_timer tick_;
  std::array<char, 16 * 1024> in_{};
  std::string input_;   // read, not yet taken by the driver
  std::string output_;  // being written
  bool reading_ = false, writing_ = false, closed_ = false, in_events_ = false;
  std::string abort_reason_;
};

}  // namespace fleetcast::net
