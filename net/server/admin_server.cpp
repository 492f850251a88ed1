// A small HTTP server for operators (see admin_server.hpp).
#include "net/server/admin_server.hpp"

#include "net/server/listen.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <thread>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct admin_server::impl {
  handler handle;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  std::size_t open = 0;  // connections being served

  asio::awaitable<void> serve(tcp::socket socket) {
    struct counted {  // counted in by the accept loop, out here
      std::size_t& n;
      ~counted() { --n; }
    } in_use{open};
    boost::system::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    const auto address = peer.address();
    const bool on_loopback =
        !peer_ec &&
        (address.is_loopback() ||
         (address.is_v6() && address.to_v6().is_v4_mapped() &&
          asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback()));
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      // A whole request within the deadline, the first as the next: a
      // client that sends nothing, or a byte at a time, is let go.
      stream.expires_after(admin_request_deadline);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, no_throw);
      if (ec) co_return;
      const auto& req = parser.get();
      admin_response answer;
      try {
        admin_request r{
            std::string(req.method_string()),
            std::string(req.target()),
            std::string(req[http::field::authorization]),
            on_loopback,
            std::string(req[http::field::origin]),
            std::string(req[http::field::host]),
            req.find("X-Fleetcast-Admin") != req.end(),
            peer_ec ? std::string() : fmt::format("{}:{}", address.to_string(), peer.port())};
        answer = handle(r);
      } catch (const std::exception& e) {
        answer = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
      }
      http::response<http::string_body> res{static_cast<http::status>(answer.status),
                                            req.version()};
      res.set(http::field::content_type, answer.content_type);
      res.set(http::field::cache_control, "no-store");
      if (answer.ask_bearer) res.set(http::field::www_authenticate, "Bearer");
      res.keep_alive(req.keep_alive());
      res.body() = std::move(answer.body);
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, no_throw);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> accept_loop() {
    constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(no_throw);
      if (ec) {
        if (!acceptor.is_open()) co_return;
        // Out of descriptors (EMFILE) or the like: not a hot loop; the
        // jobs' own descriptors come first.
        asio::steady_timer pause(ioc, std::chrono::milliseconds(100));
        co_await pause.async_wait(no_throw);
        continue;
      }
      if (open >= admin_max_connections) {  // at the cap: this one is let go at once
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++open;  // now, in accept order: the next accept sees it
      asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
    }
  }
};

admin_server::admin_server(const std::string& listen, handler h) : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.handle = std::move(h);
  const auto endpoint = detail::parse_listen(listen);
  detail::listen_on(s.acceptor, endpoint, "admin_listen \"" + listen + "\"");
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  s.thread = std::thread([&s] { s.ioc.run(); });
}

admin_server::~admin_server() {
  auto& s = *impl_;
  asio::post(s.ioc, [&s] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
    s.ioc.stop();
  });
  if (s.thread.joinable()) s.thread.join();
}

std::uint16_t admin_server::port() const noexcept {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace fleetcast::net
