// The emulator's HTTP(S) server: Beast, one coroutine per connection on a
// strand, N threads on one io_context (see emulator.hpp).
#include <fleetcast/net/server/emulator.hpp>

#include "net/client/token_source.hpp"
#include "net/server/ack_emitter.hpp"
#include "net/server/amqp_listener.hpp"
#include "net/server/listen.hpp"

#include "core/emulator/emulator_session.hpp"
#include "net/server/tls_identity.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

namespace {

// The record file: whole requests' lines appended under a lock.
class file_record final : public emulator_record_sink {
 public:
  explicit file_record(const std::string& path) : file_(std::fopen(path.c_str(), "w")) {
    if (!file_) throw std::runtime_error(path + ": cannot open the record file for writing");
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  }
  ~file_record() override { std::fclose(file_); }
  void write(std::string_view lines) override {
    std::lock_guard lock(mutex_);
    std::fwrite(lines.data(), 1, lines.size(), file_);
  }
  void flush() {
    std::lock_guard lock(mutex_);
    std::fflush(file_);
  }

 private:
  std::FILE* file_;
  std::mutex mutex_;
};

}  // namespace

struct emulator::impl {
  emulator_config config;
  std::unique_ptr<file_record> record;
  emulator_state state;
  std::unique_ptr<ack_emitter> acks;
  std::optional<ssl::context> amqp_tls;  // the subscription's (same identity)
  std::unique_ptr<amqp_listener> amqp;
  std::string cert_pem;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  asio::io_context ioc;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  bool stopped = false;

  impl(emulator_config c, std::unique_ptr<file_record> r)
      : config(std::move(c)), record(std::move(r)), state(config, record.get()) {}

  std::uint64_t now_ms() const {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), no_throw);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;  // e.g. too many open files: keep serving the others
      }
      socket.set_option(tcp::no_delay(true), ec);
      state.count(emulator_counter::connections);
      state.connection_opened();
      auto ex = socket.get_executor();
      if (tls) {
        co_spawn(ex, serve_tls(beast::tcp_stream(std::move(socket))), asio::detached);
      } else {
        co_spawn(ex, serve(beast::tcp_stream(std::move(socket))), asio::detached);
      }
    }
  }

  asio::awaitable<void> serve_tls(beast::tcp_stream tcp_stream) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, no_throw);
    if (ec) {
      state.connection_closed();
      co_return;
    }
    state.count(emulator_counter::tls_handshakes);
    co_await serve(std::move(stream));
  }

  // Reads requests in order (pipelined ones wait in the buffer), answers each.
  template <typename Stream>
  asio::awaitable<void> serve(Stream stream) {
    struct closed_at_end {  // the connection is open until this frame ends
      emulator_state& s;
      ~closed_at_end() { s.connection_closed(); }
    } at_end{state};
    beast::flat_buffer buffer;
    emulator_session session(state);
    std::string head;
    std::uint64_t nth = 0;
    asio::steady_timer timer(stream.get_executor());
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(config.max_body_bytes);
      beast::get_lowest_layer(stream).expires_after(std::chrono::minutes(5));  // idle limit
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, no_throw);
      const emulator_reply* reply = nullptr;
      bool keep_alive = false;
      if (ec == http::error::header_limit) {
        reply = &session.refuse(431);
      } else if (ec == http::error::body_limit) {
        reply = &session.refuse(413);
      } else if (ec) {
        co_return;  // closed by the client, timed out, or malformed HTTP: drop it
      } else {
        const auto& req = parser.get();
        emulator_request r;
        r.method = req.method_string();
        r.target = req.target();
        if (auto it = req.find(http::field::authorization); it != req.end()) {
          r.authorization = it->value();
        }
        r.body = req.body();
        r.connection_request = ++nth;
        r.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
        keep_alive = req.keep_alive();
        reply = &session.handle(r, now_ms());
      }
      if (reply->what == emulator_reply::kind::reset) {
        auto& socket = beast::get_lowest_layer(stream).socket();
        socket.set_option(asio::socket_base::linger(true, 0), ec);
        socket.close(ec);  // RST: the request was executed, its answer is lost
        co_return;
      }
      if (reply->delay_ms) {
        timer.expires_after(std::chrono::milliseconds(reply->delay_ms));
        co_await timer.async_wait(no_throw);
      }
      const bool close = reply->close || !keep_alive;
      head.clear();
      auto out = std::back_inserter(head);
      fmt::format_to(out, "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                     reply->status, http_reason(reply->status), reply->content_type,
                     session.body().size());
      if (reply->retry_after_s) fmt::format_to(out, "Retry-After: {}\r\n", reply->retry_after_s);
      if (!reply->allow.empty()) fmt::format_to(out, "Allow: {}\r\n", reply->allow);
      head += close ? "Connection: close\r\n\r\n" : "\r\n";
      // buffers_cat, not std::array<const_buffer, 2>: Asio's two-buffer write
      // path hands Beast's ssl_stream an empty first buffer on its second
      // round, which writes nothing and ends the write after the head.
      const auto buffers = beast::buffers_cat(asio::buffer(head), asio::buffer(session.body()));
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
      auto [wec, written] = co_await asio::async_write(stream, buffers, no_throw);
      session.answered();
      if (wec) co_return;
      if (close) {
        co_await shutdown(stream);
        co_return;
      }
    }
  }

  static asio::awaitable<void> shutdown(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    co_return;
  }
  static asio::awaitable<void> shutdown(beast::ssl_stream<beast::tcp_stream>& stream) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(no_throw);
  }
};

emulator::emulator(emulator_config config) {
  std::unique_ptr<file_record> record;
  if (!config.record.empty()) record = std::make_unique<file_record>(config.record);
  impl_ = std::make_unique<impl>(std::move(config), std::move(record));
  auto& self = *impl_;

  const auto endpoint = detail::parse_listen(self.config.listen);

  auto& acks = self.config.acks;
  if (self.config.tls || !acks.amqp_listen.empty()) {
    tls_identity identity;
    if (!self.config.cert_file.empty()) {
      identity = load_tls_identity(self.config.cert_file, self.config.key_file);
    } else {
      identity = make_self_signed_identity({"localhost"}, {"127.0.0.1", "::1"});
    }
    self.cert_pem = identity.cert_pem;
    const auto server_context = [&](std::optional<ssl::context>& ctx) {
      ctx.emplace(ssl::context::tls_server);
      ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      boost::system::error_code ec;
      ctx->use_certificate_chain(asio::buffer(identity.cert_pem), ec);
      if (ec) throw std::runtime_error("TLS certificate: " + ec.message());
      ctx->use_private_key(asio::buffer(identity.key_pem), ssl::context::pem, ec);
      if (ec) throw std::runtime_error("TLS private key: " + ec.message());
    };
    if (self.config.tls) server_context(self.tls);
    if (!acks.amqp_listen.empty()) server_context(self.amqp_tls);
  }
  if (!acks.amqp_listen.empty()) {
    amqp_listener_config ac;
    ac.listen = acks.amqp_listen;
    ac.access_key = acks.access_key;
    ac.access_secret = acks.access_secret;
    if (!acks.access_secret_file.empty()) {
      std::string error;
      if (!read_secret(acks.access_secret_file, {}, "acks.access_secret", ac.access_secret, error))
        throw std::runtime_error(error);
    }
    ac.queue = acks.queue;
    ac.disconnect_after_messages = acks.disconnect_after_messages;
    ac.disconnect_before_accept = acks.disconnect_before_accept;
    ac.echo_login = acks.echo_login != 0;
    self.amqp = std::make_unique<amqp_listener>(std::move(ac), *self.amqp_tls);
  }
  if (acks.enabled()) {
    std::function<void(std::string)> to_amqp;
    if (self.amqp) to_amqp = [l = self.amqp.get()](std::string body) { l->push(std::move(body)); };
    self.acks = std::make_unique<ack_emitter>(acks, std::move(to_amqp));
    self.state.set_ack_sink(self.acks.get());
  }

  detail::listen_on(self.acceptor, endpoint, "listen " + self.config.listen);

  co_spawn(self.ioc, self.accept_loop(), asio::detached);
  unsigned n = self.config.threads ? self.config.threads : std::thread::hardware_concurrency();
  n = std::max(1u, n);
  self.config.threads = n;
  for (unsigned i = 0; i < n; ++i) self.threads.emplace_back([&self] { self.ioc.run(); });
}

emulator::~emulator() {
  stop();
}

void emulator::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->ioc, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  if (impl_->record) impl_->record->flush();
  if (impl_->acks) impl_->acks->stop();
  if (impl_->amqp) impl_->amqp->stop();
}

std::uint16_t emulator::amqp_port() const noexcept {
  return impl_->amqp ? impl_->amqp->port() : 0;
}

std::string emulator::amqp_stats_json() const {
  if (!impl_->amqp) return "null";
  const auto s = impl_->amqp->stats();
  return fmt::format(
      "{{\"connections\":{},\"logins_refused\":{},\"links_refused\":{},\"attach_timeouts\":{},"
      "\"sent\":{},\"accepted\":{},\"redelivered\":{},\"disconnects\":{},\"queued\":{}}}",
      s.connections, s.logins_refused, s.links_refused, s.attach_timeouts, s.sent, s.accepted,
      s.redelivered, s.disconnects, s.queued);
}

std::uint16_t emulator::port() const noexcept {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

std::string emulator::host() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).address().to_string();
}

std::string emulator::url() const {
  const auto h = host();
  const bool v6 = h.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", tls() ? "https" : "http", v6 ? "[" : "", h, v6 ? "]" : "",
                     port());
}

bool emulator::tls() const noexcept {
  return impl_->tls.has_value();
}
const std::string& emulator::certificate_pem() const noexcept {
  return impl_->cert_pem;
}
const emulator_state& emulator::state() const noexcept {
  return impl_->state;
}
unsigned emulator::threads() const noexcept {
  return impl_->config.threads;
}

}  // namespace fleetcast::net
