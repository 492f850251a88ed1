// The subscription's receiver against the emulator's AMQP 1.0 listener over
// TLS on loopback: no message is acknowledged before the owner's sync hook
// has run after it was received (the outcome is on disk before the broker
// forgets the message), syncs are batched, a failed sync acknowledges
// nothing, and a message over the size bound is unreadable, not kept.
#include "net/acks/amqp_ack_receiver.hpp"
#include "net/server/amqp_listener.hpp"
#include "net/server/tls_identity.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace fleetcast::net {
namespace {

namespace asio = boost::asio;

struct broker {
  tls_identity id = make_self_signed_identity({"localhost"}, {"127.0.0.1"});
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  std::unique_ptr<amqp_listener> listener;
  explicit broker(std::uint32_t disconnect_after = 0) {
    ctx.use_certificate_chain(asio::buffer(id.cert_pem));
    ctx.use_private_key(asio::buffer(id.key_pem), asio::ssl::context::pem);
    amqp_listener_config c;
    c.access_key = "test-key";
    c.access_secret = "test-secret-0123456789";
    c.queue = "a.1.sync";
    c.disconnect_after_messages = disconnect_after;
    listener = std::make_unique<amqp_listener>(c, ctx);
  }
  amqp_receiver_config client() const {
    amqp_receiver_config r;
    r.amqp.host = "127.0.0.1";
    r.amqp.port = listener->port();
    r.amqp.hostname = "quec-open";
    r.amqp.source = "/queues/a.1.sync";
    r.access_key = "test-key";
    r.access_secret = "test-secret-0123456789";
    std::string error;
    tls_config tls;
    r.tls = tls_client::make(tls, error, id.cert_pem, false);
    REQUIRE_MESSAGE(r.tls, error);
    return r;
  }
};

// Runs the loop until `done()` or the deadline, which fails the test naming
// what it waited for.
void run_until(asio::io_context& ioc, const std::function<bool()>& done, const char* what) {
  asio::steady_timer poll(ioc);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::function<void()> look = [&] {
    if (done() || std::chrono::steady_clock::now() > deadline) return ioc.stop();
    poll.expires_after(std::chrono::milliseconds(5));
    poll.async_wait([&](boost::system::error_code) { look(); });
  };
  look();
  ioc.restart();
  ioc.run();
  REQUIRE_MESSAGE(done(), "waited 20 s for ", what);
}

TEST_CASE("amqp receiver: nothing is acknowledged before a sync that followed its receipt") {
  broker b;
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i) b.listener->push(fmt::format("{{\"n\":{}}}", i));
  asio::io_context ioc;
  amqp_ack_receiver r(ioc.get_executor(), b.client(), nullptr);
  std::uint64_t received = 0, durable = 0, violations = 0;
  r.hold_messages([&](std::string_view, std::uint64_t tag) {
    ++received;
    if (r.settled() > durable) ++violations;  // acknowledged what no sync covered
    r.accept_after_sync(tag);
  });
  r.on_sync([&] {
    if (r.settled() > durable) ++violations;
    durable = received;  // everything received so far is on disk now
    return std::string();
  });
  r.start();
  run_until(
      ioc, [&] { return b.listener->stats().accepted == n; }, "every message accepted");
  CHECK(violations == 0);
  CHECK(r.settled() == n);
  CHECK(r.syncs() >= 1);
  CHECK(r.syncs() < n / 4);  // batched: one sync covers a burst
  r.stop();
}

TEST_CASE("amqp receiver: a sync that fails acknowledges nothing, the broker keeps the messages") {
  broker b;
  for (int i = 0; i < 50; ++i) b.listener->push(fmt::format("{{\"n\":{}}}", i));
  asio::io_context ioc;
  amqp_ack_receiver r(ioc.get_executor(), b.client(), nullptr);
  std::uint64_t received = 0;
  r.hold_messages([&](std::string_view, std::uint64_t tag) {
    ++received;
    r.accept_after_sync(tag);
  });
  r.on_sync([] { return std::string("No space left on device"); });
  r.start();
  run_until(
      ioc, [&] { return received == 50 && r.syncs() > 0; }, "50 messages and a sync");
  CHECK(r.settled() == 0);
  CHECK(b.listener->stats().accepted == 0);
  CHECK(r.last_error().find("No space left on device") != std::string::npos);
  r.stop();
}

TEST_CASE("amqp receiver: a message over the bound is unreadable, its bytes not kept") {
  broker b;
  b.listener->push(std::string(max_message_bytes + 100, 'x'));
  b.listener->push("{\"small\":1}");
  asio::io_context ioc;
  amqp_ack_receiver r(ioc.get_executor(), b.client(), nullptr);
  std::vector<std::string> bodies;
  r.hold_messages([&](std::string_view body, std::uint64_t tag) {
    bodies.emplace_back(body);
    r.accept(tag);
  });
  r.start();
  run_until(
      ioc, [&] { return bodies.size() == 2; }, "two messages");
  CHECK(bodies[0] == "not a message with a data or string body");
  CHECK(bodies[1] == "{\"small\":1}");
  r.stop();
}

}  // namespace
}  // namespace fleetcast::net
