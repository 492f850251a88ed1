// Proton's connection driver over an Asio TLS stream (see amqp_pump.hpp).
#include "net/acks/amqp_pump.hpp"

#include <proton/condition.h>
#include <proton/transport.h>

#include <boost/asio/write.hpp>

#include <chrono>
#include <cstring>

namespace fleetcast::net {

namespace asio = boost::asio;

namespace {
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

amqp_pump::amqp_pump(stream_type stream, event_handler on_event, closed_handler on_closed)
    : stream_(std::move(stream)),
      on_event_(std::move(on_event)),
      on_closed_(std::move(on_closed)),
      tick_(stream_.get_executor()) {
  pn_connection_driver_init(&driver_, nullptr, nullptr);
}

amqp_pump::~amqp_pump() {
  pn_connection_driver_destroy(&driver_);
}

void amqp_pump::start() {
  pump();
}

void amqp_pump::abort(const std::string& why) {
  if (closed_) return;
  abort_reason_ = why;
  boost::system::error_code ec;
  stream_.lowest_layer().cancel(ec);
  stream_.lowest_layer().close(ec);
  pn_connection_driver_close(&driver_);
  pump();
}

void amqp_pump::pump() {
  if (closed_ || in_events_) return;  // an event handler's changes are pumped after it
  in_events_ = true;
  for (;;) {
    feed();
    pn_event_t* e;
    bool any = false;
    while ((e = pn_connection_driver_next_event(&driver_)) != nullptr) {
      any = true;
      on_event_(e);
    }
    if (!any) break;
  }
  in_events_ = false;
  write();
  read();
  schedule_tick();
  finish();
}

void amqp_pump::feed() {
  while (!input_.empty()) {
    const pn_rwbytes_t buf = pn_connection_driver_read_buffer(&driver_);
    if (buf.size == 0) {
      if (pn_connection_driver_read_closed(&driver_)) input_.clear();
      return;  // the driver has no room now: the rest after its events
    }
    const std::size_t n = std::min(buf.size, input_.size());
    std::memcpy(buf.start, input_.data(), n);
    pn_connection_driver_read_done(&driver_, n);
    input_.erase(0, n);
  }
}

void amqp_pump::read() {
  if (reading_ || !abort_reason_.empty() || pn_connection_driver_read_closed(&driver_) ||
      !input_.empty())
    return;
  reading_ = true;
  stream_.async_read_some(asio::buffer(in_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            self->reading_ = false;
                            if (ec) {
                              if (!self->abort_reason_.empty() || self->closed_)
                                return self->pump();
                              pn_connection_driver_read_close(&self->driver_);
                            } else {
                              self->input_.append(self->in_.data(), n);
                            }
                            self->pump();
                          });
}

void amqp_pump::write() {
  if (writing_ || !abort_reason_.empty()) return;
  const pn_bytes_t buf = pn_connection_driver_write_buffer(&driver_);
  if (buf.size == 0) return;
  // Our own copy is written: the driver's buffer may move as it makes more.
  output_.assign(buf.start, buf.size);
  pn_connection_driver_write_done(&driver_, buf.size);
  writing_ = true;
  asio::async_write(stream_, asio::buffer(output_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec) pn_connection_driver_write_close(&self->driver_);
                      self->pump();
                    });
}

void amqp_pump::schedule_tick() {
  if (closed_) return;
  const std::int64_t next = pn_transport_tick(driver_.transport, now_ms());
  if (next <= 0) return;
  tick_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(1, next - now_ms())));
  tick_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->pump();
  });
}

void amqp_pump::finish() {
  if (closed_) return;
  // Both directions over: the socket goes once nothing is in flight.
  if (!abort_reason_.empty()) {
    pn_connection_driver_read_close(&driver_);
    pn_connection_driver_write_close(&driver_);
  }
  if (!pn_connection_driver_read_closed(&driver_) || !pn_connection_driver_write_closed(&driver_))
    return;
  if (reading_ || writing_) {
    boost::system::error_code ec;
    stream_.lowest_layer().cancel(ec);
    return;
  }
  while (pn_event_t* e = pn_connection_driver_next_event(&driver_)) on_event_(e);
  closed_ = true;
  tick_.cancel();
  boost::system::error_code ec;
  stream_.lowest_layer().close(ec);
  std::string error = abort_reason_;
  if (pn_condition_t* c = pn_transport_condition(driver_.transport);
      error.empty() && pn_condition_is_set(c)) {
    error = pn_condition_get_name(c);
    if (const char* d = pn_condition_get_description(c); d && *d) error += std::string(": ") + d;
  }
  if (auto h = std::exchange(on_closed_, nullptr)) h(error);
}

}  // namespace fleetcast::net
