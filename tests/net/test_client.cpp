// The integration tests' HTTP client (see test_client.hpp).
#include "tests/net/test_client.hpp"

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

namespace fleetcast::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct test_client::impl {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  ssl::stream<tcp::socket> stream{ioc, ctx};
  bool tls = false;
  boost::beast::flat_buffer buffer;
  boost::system::error_code connect_error;
  int timeout_ms = 0;

  template <typename F>
  auto with_stream(F&& f) {
    return tls ? f(stream) : f(stream.next_layer());
  }
};

test_client::test_client(const std::string& host, std::uint16_t port, const std::string& ca_pem,
                         const std::string& host_name)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.tls = !ca_pem.empty();
  boost::system::error_code ec;
  s.stream.next_layer().connect({asio::ip::make_address(host), port}, ec);
  if (!ec && s.tls) {
    s.ctx.add_certificate_authority(asio::buffer(ca_pem), ec);
    s.stream.set_verify_mode(ssl::verify_peer);
    s.stream.set_verify_callback(ssl::host_name_verification(host_name));
    SSL_set_tlsext_host_name(s.stream.native_handle(), host_name.c_str());
    if (!ec) s.stream.handshake(ssl::stream_base::client, ec);
  }
  s.connect_error = ec;
}

test_client::~test_client() = default;

const boost::system::error_code& test_client::connect_error() const noexcept {
  return impl_->connect_error;
}

void test_client::set_receive_timeout_ms(int ms) {
  impl_->timeout_ms = ms;
}

std::string test_client::request_text(std::string_view method, std::string_view target,
                                      std::string_view body,
                                      std::optional<std::string_view> token) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\n", method, target);
  if (token) r += fmt::format("Authorization: {}\r\n", *token);
  if (!body.empty() || method == "POST") {
    r += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  r += "\r\n";
  r += body;
  return r;
}

boost::system::error_code test_client::send(std::string_view bytes) {
  boost::system::error_code ec;
  impl_->with_stream([&](auto& st) { asio::write(st, asio::buffer(bytes), ec); });
  return ec;
}

http_answer test_client::receive() {
  http_answer a;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  auto& s = *impl_;
  if (s.timeout_ms == 0) {
    s.with_stream([&](auto& st) { http::read(st, s.buffer, parser, a.error); });
  } else {
    // Asio's blocking reads ignore SO_RCVTIMEO: read asynchronously, for a while.
    bool done = false;
    s.with_stream([&](auto& st) {
      http::async_read(st, s.buffer, parser, [&](boost::system::error_code ec, std::size_t) {
        a.error = ec;
        done = true;
      });
    });
    s.ioc.restart();
    s.ioc.run_for(std::chrono::milliseconds(s.timeout_ms));
    if (!done) {
      boost::system::error_code ignored;
      s.stream.next_layer().cancel(ignored);
      s.ioc.restart();
      s.ioc.run();
      a.error = asio::error::timed_out;
    }
  }
  if (a.error) return a;
  const auto& res = parser.get();
  a.status = static_cast<int>(res.result_int());
  a.body = res.body();
  a.connection = std::string(res[http::field::connection]);
  a.retry_after = std::string(res[http::field::retry_after]);
  a.content_type = std::string(res[http::field::content_type]);
  a.allow = std::string(res[http::field::allow]);
  return a;
}

http_answer test_client::post(std::string_view target, std::string_view body,
                              std::optional<std::string_view> token) {
  http_answer a;
  a.error = send(request_text("POST", target, body, token));
  return a.error ? a : receive();
}

http_answer test_client::get(std::string_view target) {
  http_answer a;
  a.error = send(request_text("GET", target, "", std::nullopt));
  return a.error ? a : receive();
}

}  // namespace fleetcast::test
