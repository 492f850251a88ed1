// The emulator's AMQP 1.0 subscription (see amqp_listener.hpp).
#include "net/server/amqp_listener.hpp"

#include "net/acks/amqp_login.hpp"
#include "net/acks/amqp_pump.hpp"
#include "net/server/listen.hpp"

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/sasl.h>
#include <proton/sasl_plugin.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct connection_state;

// Proton's SASL layer, server side, PLAIN only, checked by check_amqp_login
// (Proton's built-in one offers no PLAIN for servers).
struct sasl_server {
  static const pnx_sasl_implementation table;
};

}  // namespace

struct amqp_listener::impl : std::enable_shared_from_this<impl> {
  impl(amqp_listener_config c, ssl::context& t, asio::io_context& io)
      : config(std::move(c)), tls(t), ioc(io) {}
  amqp_listener_config config;
  ssl::context& tls;
  asio::io_context& ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  mutable std::mutex stats_mutex;
  amqp_listener_stats counts;
  std::deque<std::string> queue;  // waiting to be sent (the loop's thread only)
  std::vector<std::shared_ptr<connection_state>> live;
  bool stopped = false;

  void count(std::uint64_t amqp_listener_stats::*field, std::uint64_t n = 1) {
    std::lock_guard lock(stats_mutex);
    counts.*field += n;
  }
  void accept();
  void send_all();
};

namespace {

struct connection_state : std::enable_shared_from_this<connection_state> {
  connection_state(std::shared_ptr<amqp_listener::impl> o, asio::any_io_executor ex)
      : owner(std::move(o)), attach_timer(ex) {}
  std::shared_ptr<amqp_listener::impl> owner;
  std::shared_ptr<amqp_pump> pump;
  asio::steady_timer attach_timer;
  std::string user;  // the login's username: Proton keeps a pointer to it, not a copy
  pn_link_t* sender = nullptr;
  std::map<std::uint64_t, std::string> unsettled;  // by delivery tag: sent, not yet accepted
  std::uint64_t next_tag = 1, sent_here = 0, accepts_here = 0;
  std::string refused;  // why the login was refused
  pn_message_t* msg = pn_message();
  std::string encoded;
  ~connection_state() { pn_message_free(msg); }

  bool source_ok(const char* address) const {
    if (!address) return false;
    const std::string a = address, q = owner->config.queue;
    return a == "/amq/queue/" + q || a == "/queues/" + q;
  }

  void close_with(pn_connection_t* c, const char* name, const std::string& text) {
    pn_condition_set_name(pn_connection_condition(c), name);
    pn_condition_set_description(pn_connection_condition(c), text.c_str());
    pn_connection_close(c);
  }

  void on_event(pn_event_t* e) {
    switch (pn_event_type(e)) {
      case PN_CONNECTION_REMOTE_OPEN: {
        pn_connection_t* c = pn_event_connection(e);
        pn_connection_open(c);
        const auto idle = pn_transport_get_remote_idle_timeout(pump->transport());
        if (idle < 30000 || idle > 60000) {
          close_with(c, "amqp:connection:framing-error",
                     "idle timeout must be 30000 to 60000 ms, not " + std::to_string(idle));
          refused = "idle timeout";
        }
        break;
      }
      case PN_SESSION_REMOTE_OPEN:
        pn_session_open(pn_event_session(e));
        break;
      case PN_LINK_REMOTE_OPEN: {
        pn_link_t* l = pn_event_link(e);
        if (!refused.empty()) break;  // the connection is being closed
        const char* address = pn_terminus_get_address(pn_link_remote_source(l));
        if (!pn_link_is_sender(l) || !source_ok(address)) {
          owner->count(&amqp_listener_stats::links_refused);
          pn_terminus_set_address(pn_link_source(l), nullptr);
          pn_condition_set_name(pn_link_condition(l), "amqp:not-found");
          std::string why =
              pn_link_is_sender(l) ? "no such queue" : "this subscription can only be consumed";
          if (owner->config.echo_login) {  // the fault: a broker that leaks credentials
            why += " for " + user + " (secret " + owner->config.access_secret + ")";
          }
          pn_condition_set_description(pn_link_condition(l), why.c_str());
          pn_link_open(l);
          pn_link_close(l);
          break;
        }
        pn_terminus_copy(pn_link_source(l), pn_link_remote_source(l));
        pn_link_open(l);
        sender = l;
        attach_timer.cancel();
        break;
      }
      case PN_LINK_FLOW:
        send();
        break;
      case PN_DELIVERY: {
        pn_delivery_t* d = pn_event_delivery(e);
        if (!pn_delivery_updated(d)) break;
        const auto state = pn_delivery_remote_state(d);
        const pn_delivery_tag_t tag = pn_delivery_tag(d);
        std::uint64_t t = 0;
        std::memcpy(&t, tag.start, std::min<std::size_t>(tag.size, sizeof t));
        if (state == PN_ACCEPTED) {
          const auto every = owner->config.disconnect_before_accept;
          if (every && ++accepts_here % every == 0) {
            // The fault: cut before the acceptance counts (sent again later).
            owner->count(&amqp_listener_stats::disconnects);
            asio::post(pump->stream().get_executor(),
                       [p = pump] { p->abort("disconnect before accept fault"); });
            break;
          }
          unsettled.erase(t);
          owner->count(&amqp_listener_stats::accepted);
        }
        if (pn_delivery_settled(d) || state == PN_ACCEPTED) pn_delivery_settle(d);
        break;
      }
      case PN_LINK_REMOTE_CLOSE:
      case PN_LINK_REMOTE_DETACH:
        if (pn_event_link(e) == sender) sender = nullptr;
        pn_link_close(pn_event_link(e));
        break;
      case PN_CONNECTION_REMOTE_CLOSE:
        pn_connection_close(pn_event_connection(e));
        break;
      default:
        break;
    }
  }

  void send() {
    if (!sender || pump->closed()) return;
    auto& q = owner->queue;
    const auto limit = owner->config.disconnect_after_messages;
    while (!q.empty() && pn_link_credit(sender) > 0) {
      const std::uint64_t tag = next_tag++;
      pn_delivery_t* d =
          pn_delivery(sender, pn_dtag(reinterpret_cast<const char*>(&tag), sizeof tag));
      pn_message_clear(msg);
      pn_data_t* body = pn_message_body(msg);
      pn_data_put_binary(body, pn_bytes(q.front().size(), q.front().data()));
      encoded.resize(1024 + q.front().size());
      std::size_t size = encoded.size();
      if (pn_message_encode(msg, encoded.data(), &size) != 0) {
        q.pop_front();
        continue;
      }
      pn_link_send(sender, encoded.data(), size);
      pn_link_advance(sender);
      (void)d;
      unsettled.emplace(tag, std::move(q.front()));
      q.pop_front();
      {
        std::lock_guard lock(owner->stats_mutex);
        owner->counts.queued = q.size();
      }
      owner->count(&amqp_listener_stats::sent);
      if (limit && ++sent_here >= limit) {
        // The fault: the connection drops with messages sent but not yet
        // accepted (they go out first, then the socket closes).
        owner->count(&amqp_listener_stats::disconnects);
        asio::post(pump->stream().get_executor(), [p = pump] { p->abort("disconnect fault"); });
        return;
      }
    }
  }

  void closed() {
    attach_timer.cancel();
    // What was not accepted goes back to the front, in order: sent again.
    auto& q = owner->queue;
    owner->count(&amqp_listener_stats::redelivered, unsettled.size());
    for (auto it = unsettled.rbegin(); it != unsettled.rend(); ++it)
      q.push_front(std::move(it->second));
    unsettled.clear();
    sender = nullptr;
    auto& live = owner->live;
    live.erase(std::remove(live.begin(), live.end(), shared_from_this()), live.end());
    owner->send_all();
  }
};

connection_state* state_of(pn_transport_t* t) {
  return static_cast<connection_state*>(pnx_sasl_get_context(t));
}

const pnx_sasl_implementation sasl_server::table = {
    [](pn_transport_t*) {},  // free: the context is not ours to free
    [](pn_transport_t*) -> const char* { return "PLAIN"; },  // list_mechanisms
    [](pn_transport_t* t) {                                  // init_server
      pnx_sasl_set_desired_state(t, SASL_POSTED_MECHANISMS);
      return true;
    },
    [](pn_transport_t*) { return false; },  // init_client: never a client
    [](pn_transport_t*) {},                 // prepare_write
    [](pn_transport_t* t, const char* mechanism, const pn_bytes_t* recv) {  // process_init
      connection_state* s = state_of(t);
      std::string why;
      std::string user;
      if (std::string_view(mechanism) != "PLAIN" || !recv) {
        why = "only PLAIN is offered";
      } else {
        // [authzid] NUL username NUL password
        const std::string_view r(recv->start, recv->size);
        const auto a = r.find('\0');
        const auto b = a == std::string_view::npos ? a : r.find('\0', a + 1);
        if (b == std::string_view::npos) {
          why = "not a PLAIN response";
        } else {
          user = std::string(r.substr(a + 1, b - a - 1));
          why = check_amqp_login(user, r.substr(b + 1), s->owner->config.access_key,
                                 s->owner->config.access_secret, wall_ms());
        }
      }
      if (why.empty()) {
        s->user = std::move(user);
        pnx_sasl_set_succeeded(t, s->user.c_str(), nullptr);
      } else {
        s->refused = why;
        s->owner->count(&amqp_listener_stats::logins_refused);
        pnx_sasl_set_failed(t);
      }
      pnx_sasl_set_desired_state(t, SASL_POSTED_OUTCOME);
    },
    [](pn_transport_t*, const pn_bytes_t*) {},                              // process_response
    [](pn_transport_t*, const char*) { return false; },                     // process_mechanisms
    [](pn_transport_t*, const pn_bytes_t*) {},                              // process_challenge
    [](pn_transport_t*, const pn_bytes_t*) {},                              // process_outcome
    [](pn_transport_t*) { return false; },                                  // can_encrypt
    [](pn_transport_t*) -> ssize_t { return 0; },                           // max_encrypt_size
    [](pn_transport_t*, pn_bytes_t, pn_bytes_t*) -> ssize_t { return 0; },  // encode
    [](pn_transport_t*, pn_bytes_t, pn_bytes_t*) -> ssize_t { return 0; },  // decode
};

}  // namespace

void amqp_listener::impl::accept() {
  acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec,
                                                    tcp::socket socket) {
    if (ec) {
      if (self->stopped || !self->acceptor.is_open()) return;
      return self->accept();
    }
    self->count(&amqp_listener_stats::connections);
    socket.set_option(tcp::no_delay(true), ec);
    auto stream = std::make_shared<amqp_pump::stream_type>(std::move(socket), self->tls);
    stream->async_handshake(ssl::stream_base::server, [self, stream](boost::system::error_code e2) {
      if (e2 || self->stopped) return;
      auto c = std::make_shared<connection_state>(self, stream->get_executor());
      std::weak_ptr<connection_state> weak = c;
      c->pump = std::make_shared<amqp_pump>(
          std::move(*stream),
          [weak](pn_event_t* e) {
            if (auto s = weak.lock()) s->on_event(e);
          },
          [weak](const std::string&) {
            if (auto s = weak.lock()) s->closed();
          });
      pn_transport_t* t = c->pump->transport();
      pn_transport_set_server(t);
      pn_transport_set_idle_timeout(t, 60000);
      pn_sasl_t* sasl = pn_sasl(t);
      pn_sasl_set_allow_insecure_mechs(sasl, true);  // TLS is below Proton, in Asio
      pnx_sasl_set_implementation(t, &sasl_server::table, c.get());
      // A receiving link within 15 s, or the connection goes.
      c->attach_timer.expires_after(std::chrono::seconds(15));
      c->attach_timer.async_wait([weak](boost::system::error_code te) {
        auto s = weak.lock();
        if (te || !s || s->sender) return;
        s->owner->count(&amqp_listener_stats::attach_timeouts);
        s->pump->abort("no receiving link within 15 s");
      });
      self->live.push_back(c);
      c->pump->start();
    });
    self->accept();
  });
}

void amqp_listener::impl::send_all() {
  for (auto& c : live) {
    c->send();
    c->pump->pump();
  }
}

amqp_listener::amqp_listener(amqp_listener_config config, ssl::context& tls)
    : ioc_(std::make_unique<asio::io_context>(1)),
      impl_(std::make_shared<impl>(std::move(config), tls, *ioc_)) {
  detail::listen_on(impl_->acceptor, detail::parse_listen(impl_->config.listen),
                    "acks.amqp_listen " + impl_->config.listen);
  impl_->accept();
  impl_->thread = std::thread([io = ioc_.get()] { io->run(); });
}

amqp_listener::~amqp_listener() {
  stop();
  impl_.reset();
  ioc_.reset();  // its pending handlers go, and with them the last references to the state
}

void amqp_listener::stop() {
  if (impl_->stopped) return;
  asio::post(impl_->ioc, [s = impl_] {
    s->stopped = true;
    boost::system::error_code ec;
    s->acceptor.close(ec);
    auto live = s->live;
    for (auto& c : live) c->pump->abort("stopped");
  });
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->stopped = true;
  impl_->live.clear();
}

std::uint16_t amqp_listener::port() const noexcept {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void amqp_listener::push(std::string body) {
  asio::post(impl_->ioc, [s = impl_, b = std::move(body)]() mutable {
    s->queue.push_back(std::move(b));
    {
      std::lock_guard lock(s->stats_mutex);
      s->counts.queued = s->queue.size();
    }
    s->send_all();
  });
}

amqp_listener_stats amqp_listener::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  auto s = impl_->counts;
  return s;
}

}  // namespace fleetcast::net
