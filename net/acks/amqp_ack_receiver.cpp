// The subscription's AMQP 1.0 receiver (see amqp_ack_receiver.hpp).
#include "net/acks/amqp_ack_receiver.hpp"

#include <fleetcast/core/output/secret_registry.hpp>
#include "net/acks/amqp_login.hpp"
#include "net/acks/amqp_pump.hpp"
#include "net/client/tls_context.hpp"
#include "net/client/token_source.hpp"

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint32_t credit_window = 256;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The broker's own words: bounded, valid UTF-8, never a credential it echoes.
std::string condition_text(pn_condition_t* c) {
  if (!c || !pn_condition_is_set(c)) return {};
  std::string s = pn_condition_get_name(c);
  if (const char* d = pn_condition_get_description(c); d && *d) s += std::string(": ") + d;
  return outside_text(s);
}

// The body of a message as bytes: a data section or an AMQP string value.
std::optional<std::string> body_of(const char* bytes, std::size_t size, pn_message_t* msg) {
  pn_message_clear(msg);
  if (pn_message_decode(msg, bytes, size) != 0) return std::nullopt;
  pn_data_t* body = pn_message_body(msg);
  pn_data_rewind(body);
  if (!pn_data_next(body)) return std::nullopt;
  switch (pn_data_type(body)) {
    case PN_BINARY: {
      const pn_bytes_t b = pn_data_get_binary(body);
      return std::string(b.start, b.size);
    }
    case PN_STRING: {
      const pn_bytes_t b = pn_data_get_string(body);
      return std::string(b.start, b.size);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

bool read_amqp_credentials(const amqp_acks_config& amqp, std::string& key, std::string& secret,
                           std::string& error) {
  return read_secret(amqp.access_key_file, amqp.access_key_env, "acks.amqp.access_key", key,
                     error) &&
         read_secret(amqp.access_secret_file, amqp.access_secret_env, "acks.amqp.access_secret",
                     secret, error);
}

struct amqp_ack_receiver::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, amqp_receiver_config c, subscription_handler h)
      : ex(e), config(std::move(c)), handler(std::move(h)), timer(e), attach_timer(e) {}
  ~impl() { pn_message_free(msg); }

  asio::any_io_executor ex;
  amqp_receiver_config config;
  subscription_handler handler;
  amqp_ack_receiver::holding_handler holder;
  std::unordered_map<std::uint64_t, pn_delivery_t*> held;  // this connection's, by tag
  std::function<std::string()> sync;
  std::vector<std::uint64_t> after_sync;  // to acknowledge once synced
  bool flush_posted = false;
  std::uint64_t settled_count = 0, sync_count = 0;
  bool oversized = false;           // the message being read is over the limit
  std::uint64_t last_tag = 0;       // never reused
  asio::steady_timer timer;         // connect timeout, then the backoff
  asio::steady_timer attach_timer;  // the 15 s rule
  std::shared_ptr<amqp_pump> pump;
  std::optional<tcp::resolver> resolver;
  pn_message_t* msg = pn_message();
  std::string incoming;  // a message's bytes as they arrive
  std::uint64_t made = 0, received = 0;
  std::string error;
  bool stopped = false, is_attached = false, refused = false;
  std::function<void(const std::string&, bool)> state_changed;
  std::chrono::milliseconds backoff{1000};

  void connect() {
    if (stopped) return;
    resolver.emplace(ex);
    auto self = shared_from_this();
    timer.expires_after(std::chrono::milliseconds(config.connect_timeout_ms));
    timer.async_wait([self](boost::system::error_code ec) {
      if (!ec && self->resolver) self->resolver->cancel();
    });
    resolver->async_resolve(
        config.amqp.host, std::to_string(config.amqp.port),
        [self](boost::system::error_code ec, tcp::resolver::results_type results) {
          if (ec)
            return self->failed(
                fmt::format("resolving {}: {}", self->config.amqp.host, ec.message()));
          auto stream =
              std::make_shared<amqp_pump::stream_type>(self->ex, self->config.tls->get().ctx);
          asio::async_connect(stream->lowest_layer(), results,
                              [self, stream](boost::system::error_code ec2, const tcp::endpoint&) {
                                if (ec2) return self->failed("connecting: " + ec2.message());
                                self->handshake(stream);
                              });
        });
  }

  void handshake(std::shared_ptr<amqp_pump::stream_type> stream) {
    const auto& host = config.amqp.host;
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    const bool literal = !ec;
    if (!literal) SSL_set_tlsext_host_name(stream->native_handle(), host.c_str());
    if (config.verify) stream->set_verify_callback(ssl::host_name_verification(host));
    stream->lowest_layer().set_option(tcp::no_delay(true), ec);
    auto self = shared_from_this();
    stream->async_handshake(ssl::stream_base::client,
                            [self, stream](boost::system::error_code ec2) {
                              self->timer.cancel();
                              if (ec2) return self->failed("TLS: " + ec2.message());
                              self->open(std::move(*stream));
                            });
  }

  void open(amqp_pump::stream_type stream) {
    if (stopped) return;
    auto self = shared_from_this();
    pump = std::make_shared<amqp_pump>(
        std::move(stream), [self](pn_event_t* e) { self->on_event(e); },
        [self](const std::string& why) { self->closed(why); });
    ++made;
    pn_connection_t* c = pump->connection();
    pn_transport_t* t = pump->transport();
    const auto login = make_amqp_login(config.access_key, config.access_secret, wall_ms());
    pn_connection_set_container(c, fmt::format("fleetcast-{}", ::getpid()).c_str());
    pn_connection_set_hostname(c, config.amqp.hostname.c_str());
    pn_connection_set_user(c, login.username.c_str());
    pn_connection_set_password(c, login.password.c_str());  // Proton clears its copy once sent
    // Proton advertises half its local idle timeout in the Open frame (and
    // gives up on a silent peer after the whole): twice the configured value.
    pn_transport_set_idle_timeout(t, 2 * config.amqp.idle_timeout_ms);
    pn_sasl_t* sasl = pn_sasl(t);
    pn_sasl_allowed_mechs(sasl, "PLAIN");
    pn_sasl_set_allow_insecure_mechs(sasl, true);  // TLS is below Proton, in Asio
    pn_connection_open(c);
    pn_session_t* s = pn_session(c);
    pn_session_open(s);
    pn_link_t* r = pn_receiver(s, "fleetcast-acks");
    pn_terminus_set_address(pn_link_source(r), config.amqp.source.c_str());
    pn_link_set_snd_settle_mode(r, PN_SND_UNSETTLED);
    pn_link_set_rcv_settle_mode(r, PN_RCV_FIRST);
    pn_link_open(r);
    pn_link_flow(r, credit_window);
    attach_timer.expires_after(std::chrono::seconds(15));
    attach_timer.async_wait([self, p = pump](boost::system::error_code ec) {
      if (!ec && !self->is_attached) p->abort("the receiving link was not attached within 15 s");
    });
    pump->start();
  }

  void on_event(pn_event_t* e) {
    switch (pn_event_type(e)) {
      case PN_LINK_REMOTE_OPEN:
        // A refused link is opened without a source, then closed (AMQP 1.0, 2.6.3).
        if (pn_link_is_receiver(pn_event_link(e)) &&
            pn_terminus_get_address(pn_link_remote_source(pn_event_link(e))) != nullptr) {
          is_attached = true;
          attach_timer.cancel();
          backoff = std::chrono::milliseconds(100);  // a drop after this: back at once
          error.clear();
          if (state_changed && !stopped) state_changed({}, false);
        }
        break;
      case PN_DELIVERY: {
        pn_delivery_t* d = pn_event_delivery(e);
        pn_link_t* link = pn_delivery_link(d);
        if (!pn_delivery_readable(d)) break;
        char buf[4096];
        ssize_t n;
        while ((n = pn_link_recv(link, buf, sizeof buf)) > 0) {
          if (incoming.size() + static_cast<std::size_t>(n) > max_message_bytes) {
            oversized = true;  // read on, kept no more
            incoming.clear();
          }
          if (!oversized) incoming.append(buf, static_cast<std::size_t>(n));
        }
        if (pn_delivery_partial(d)) break;
        pn_link_advance(link);
        auto body = oversized ? std::nullopt : body_of(incoming.data(), incoming.size(), msg);
        oversized = false;
        const std::string_view text =
            body ? std::string_view(*body)
                 : std::string_view("not a message with a data or string body");  // unreadable
        ++received;
        pn_link_flow(link, 1);
        if (stopped) {
          // Not acknowledged: the server delivers it again.
        } else if (holder) {
          const std::uint64_t tag = ++last_tag;
          held.emplace(tag, d);  // before the holder: it may accept it at once
          holder(text, tag);
        } else {
          handler(text);  // recorded when it returns
          const std::uint64_t tag = ++last_tag;
          held.emplace(tag, d);
          if (sync)
            settle_after_sync(tag);
          else
            settle(tag, false);  // inside an event: it goes out with this turn's output
        }
        incoming.clear();
        break;
      }
      case PN_LINK_REMOTE_CLOSE:
      case PN_LINK_REMOTE_DETACH: {
        pn_link_t* link = pn_event_link(e);
        error = "the server closed the receiving link on " + config.amqp.source;
        pn_condition_t* c = pn_link_remote_condition(link);
        if (auto t = condition_text(c); !t.empty()) error += ": " + t;
        if (!is_attached && pn_condition_is_set(c)) refused = true;  // refused, not dropped
        is_attached = false;
        pn_link_close(link);
        pn_connection_close(pn_event_connection(e));
        break;
      }
      case PN_SESSION_REMOTE_CLOSE: {
        // A broker that cannot give the link (RabbitMQ: no such queue) may
        // end the whole session with its reason, not only the link.
        pn_session_t* session = pn_event_session(e);
        pn_condition_t* c = pn_session_remote_condition(session);
        error = "the server ended the session for " + config.amqp.source;
        if (auto t = condition_text(c); !t.empty()) error += ": " + t;
        if (!is_attached && pn_condition_is_set(c)) refused = true;
        is_attached = false;
        pn_session_close(session);
        pn_connection_close(pn_event_connection(e));
        break;
      }
      case PN_CONNECTION_REMOTE_CLOSE: {
        pn_connection_t* c = pn_event_connection(e);
        if (auto t = condition_text(pn_connection_remote_condition(c)); !t.empty())
          error = "the server closed the connection: " + t;
        pn_connection_close(c);
        break;
      }
      case PN_TRANSPORT_ERROR: {
        pn_condition_t* c = pn_transport_condition(pn_event_transport(e));
        if (auto t = condition_text(c); !t.empty()) error = t;
        if (pn_condition_is_set(c) &&
            std::string_view(pn_condition_get_name(c)) == "amqp:unauthorized-access")
          refused = true;
        break;
      }
      default:
        break;
    }
  }

  void settle(std::uint64_t tag, bool now = true) {
    auto it = held.find(tag);
    if (it == held.end()) return;
    pn_delivery_update(it->second, PN_ACCEPTED);
    pn_delivery_settle(it->second);
    held.erase(it);
    ++settled_count;
    if (now && pump) pump->pump();  // outside an event: the disposition goes out now
  }

  void settle_after_sync(std::uint64_t tag) {
    if (!sync) return settle(tag);
    after_sync.push_back(tag);
    if (std::exchange(flush_posted, true)) return;
    // After this burst of messages: one sync, then every acknowledgement.
    asio::post(ex, [w = weak_from_this()] {
      if (auto self = w.lock()) self->flush();
    });
  }

  void flush() {
    flush_posted = false;
    if (stopped || after_sync.empty()) return;
    ++sync_count;
    if (auto problem = sync(); !problem.empty()) {
      error = "the outcomes could not be made durable, nothing acknowledged: " + problem;
      after_sync.clear();  // the server keeps them and delivers them again
      return;
    }
    for (auto tag : std::exchange(after_sync, {})) settle(tag, false);
    if (pump) pump->pump();
  }

  void closed(const std::string& why) {
    held.clear();  // freed with the connection; the server delivers them again
    after_sync.clear();
    attach_timer.cancel();
    is_attached = false;
    incoming.clear();
    if (!why.empty() && (error.empty() || why.find("15 s") != std::string::npos)) error = why;
    if (error.empty()) error = "the connection was closed";
    pump.reset();
    if (state_changed && !stopped) state_changed(error, refused);
    refused = false;
    retry_later();
  }

  void failed(const std::string& why) {
    timer.cancel();
    error = why;
    if (state_changed && !stopped) state_changed(error, false);
    retry_later();
  }

  void retry_later() {
    if (stopped) return;
    timer.expires_after(backoff);
    backoff =
        std::clamp(backoff * 2, std::chrono::milliseconds(1000), std::chrono::milliseconds(30000));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->connect();
    });
  }
};

amqp_ack_receiver::amqp_ack_receiver(asio::any_io_executor ex, amqp_receiver_config config,
                                     subscription_handler on_message)
    : impl_(std::make_shared<impl>(ex, std::move(config), std::move(on_message))) {}

amqp_ack_receiver::~amqp_ack_receiver() {
  stop();
}

void amqp_ack_receiver::start() {
  impl_->connect();
}

void amqp_ack_receiver::hold_messages(holding_handler h) {
  impl_->holder = std::move(h);
}

void amqp_ack_receiver::accept(std::uint64_t tag) {
  impl_->settle(tag);
}

void amqp_ack_receiver::accept_after_sync(std::uint64_t tag) {
  impl_->settle_after_sync(tag);
}

void amqp_ack_receiver::on_sync(std::function<std::string()> sync) {
  impl_->sync = std::move(sync);
}

std::uint64_t amqp_ack_receiver::settled() const noexcept {
  return impl_->settled_count;
}
std::uint64_t amqp_ack_receiver::syncs() const noexcept {
  return impl_->sync_count;
}

void amqp_ack_receiver::on_state(std::function<void(const std::string&, bool)> f) {
  impl_->state_changed = std::move(f);
}

void amqp_ack_receiver::stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;  // no handler is called from now on
  s.timer.cancel();
  s.attach_timer.cancel();
  if (s.resolver) s.resolver->cancel();
  // Let go of the pump now: its handlers hold this state, and a loop that
  // stops before they run (the daemon's, after a drain) must not keep both.
  if (auto p = std::move(s.pump)) p->abort("stopped");
}

std::uint64_t amqp_ack_receiver::connections() const noexcept {
  return impl_->made;
}
std::uint64_t amqp_ack_receiver::messages() const noexcept {
  return impl_->received;
}
bool amqp_ack_receiver::attached() const noexcept {
  return impl_->is_attached;
}
const std::string& amqp_ack_receiver::last_error() const noexcept {
  return impl_->error;
}

}  // namespace fleetcast::net
