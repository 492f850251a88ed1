// link_io: one connection's I/O for the rollout driver (rollout.cpp), the
// lanes' and the token renewal's alike: connect (resolved once; through the
// proxy's CONNECT tunnel when there is one; TLS with SNI, the host-name
// check and a resumed session), write a request, read one answer into the
// link (bounded: max_answer_bytes, the header and framing limits, each
// named when broken). Internal to net/client; included by rollout.cpp alone.
#pragma once

#include "core/dispatch/dispatcher.hpp"
#include "core/job/proxy.hpp"
#include "net/client/link.hpp"
#include "net/client/padded_body.hpp"
#include "net/client/tls_context.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast::net {

namespace http = beast::http;
namespace ssl = asio::ssl;

inline bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

struct link_io {
  static constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

  link_io(const job& jb, asio::any_io_executor e, const std::optional<proxy_url>& p,
          std::size_t max_answer)
      : j(jb), ex(std::move(e)), proxy(p), max_answer_bytes(max_answer) {}

  const job& j;
  asio::any_io_executor ex;
  const std::optional<proxy_url>& proxy;
  std::size_t max_answer_bytes;
  std::shared_ptr<tls_client> tls;  // set before the first TLS connect
  std::optional<tcp::resolver::results_type> endpoints;

  // What a connect came to: its kind and error, and a text naming the
  // endpoint and the proxy (connect_result's view of it).
  struct connect_outcome {
    connect_result::kind what = connect_result::kind::connected;
    boost::system::error_code code;
    std::string text;
    bool ok() const noexcept { return what == connect_result::kind::connected; }
    connect_result result() const noexcept { return {what, code, text}; }
  };

  // Connects (through the proxy's tunnel, when there is one) and shakes
  // hands.
  template <typename Stream>
  asio::awaitable<connect_outcome> connect(link<Stream>& c) {
    c.close();
    const auto& ep = j.endpoint;
    const auto why = [&](std::string_view what, boost::system::error_code code = {},
                         connect_result::kind kind = connect_result::kind::failed) {
      c.close();
      endpoints.reset();  // resolve again next time
      return connect_outcome{
          kind, code,
          proxy ? fmt::format("cannot connect to {} through the proxy {}: {}", ep.url,
                              proxy->display(), what)
                : fmt::format("cannot connect to {}: {}", ep.url, what)};
    };
    const auto limit = std::chrono::milliseconds(j.timeouts.connect_ms);
    if (!endpoints) {
      tcp::resolver resolver(ex);
      auto [ec, results] = co_await resolver.async_resolve(
          proxy ? proxy->host : ep.host, std::to_string(proxy ? proxy->port : ep.port), no_throw);
      if (ec) co_return why(ec.message(), ec);
      endpoints = results;
    }
    if (c.cut_requested)  // cut while resolving
      co_return why("stopped", {}, connect_result::kind::stopped);
    if constexpr (is_tls<Stream>) {
      c.stream.emplace(ex, tls->get().ctx);
      SSL* ssl = c.stream->native_handle();
      if (!is_ip_address(ep.host)) SSL_set_tlsext_host_name(ssl, ep.host.c_str());
      if (j.tls.verify) c.stream->set_verify_callback(ssl::host_name_verification(ep.host));
      if (c.session) SSL_set_session(ssl, c.session);
    } else {
      c.stream.emplace(ex);
    }
    auto& low = c.lowest();
    low.expires_after(limit);
    auto [ec, connected] = co_await low.async_connect(*endpoints, no_throw);
    if (!ec) low.socket().set_option(tcp::no_delay(true), ec);
    if (ec) co_return why(ec == beast::error::timeout ? "connect timed out" : ec.message(), ec);
    if (proxy) {
      // The tunnel: CONNECT, the proxy's answer; then TLS to the endpoint
      // through it, with the endpoint's own host check.
      const auto request = connect_request(*proxy, ep.host, ep.port);
      low.expires_after(limit);
      std::tie(ec, std::ignore) = co_await asio::async_write(low, asio::buffer(request), no_throw);
      http::response_parser<http::empty_body> answer;
      answer.skip(true);  // an answer to CONNECT has no body
      if (!ec)
        std::tie(ec, std::ignore) =
            co_await http::async_read_header(low, c.buffer, answer, no_throw);
      if (ec) {
        co_return why(fmt::format("no answer to CONNECT: {}",
                                  ec == beast::error::timeout ? "timed out" : ec.message()),
                      ec);
      }
      const auto target = fmt::format("{}:{}", ep.host, ep.port);
      if (auto refused =
              tunnel_refusal(*proxy, target, answer.get().result_int(), answer.get().reason());
          !refused.empty()) {
        c.close();
        co_return connect_outcome{connect_result::kind::proxy_refused, {}, std::move(refused)};
      }
      if (c.buffer.size() != 0) co_return why("the proxy sent bytes after its answer to CONNECT");
    }
    if constexpr (is_tls<Stream>) {
      low.expires_after(limit);
      std::tie(ec) = co_await c.stream->async_handshake(ssl::stream_base::client, no_throw);
      if (ec)
        co_return why(ec == beast::error::timeout ? "TLS handshake timed out" : ec.message(), ec);
    }
    co_return connect_outcome{};
  }

  template <typename Stream>
  asio::awaitable<boost::system::error_code> write(link<Stream>& c, std::string_view head,
                                                   std::string_view body) {
    // buffers_cat, not std::array<const_buffer, 2> (see emulator.cpp).
    const auto buffers = beast::buffers_cat(asio::buffer(head), asio::buffer(body));
    c.lowest().expires_after(std::chrono::milliseconds(j.timeouts.request_ms));
    auto [ec, n] = co_await asio::async_write(*c.stream, buffers, no_throw);
    co_return ec;
  }

  // Reads one answer into `c` and describes it in `r` (views into `c`).
  template <typename Stream>
  asio::awaitable<void> read(link<Stream>& c, read_result& r) {
    c.retry_after.clear();
    c.detail.clear();
    c.date.clear();
    http::response_parser<padded_body> parser;
    parser.get().body().storage = &c.answer;
    parser.body_limit(max_answer_bytes);
    c.lowest().expires_after(std::chrono::milliseconds(j.timeouts.request_ms));
    auto [ec, n] = co_await http::async_read(*c.stream, c.buffer, parser, no_throw);
    if (ec) {
      if (ec == http::error::body_limit) {
        c.detail = fmt::format("the answer is larger than the limit of {} bytes (max_answer_bytes)",
                               max_answer_bytes);
      } else if (ec == http::error::header_limit) {
        c.detail = "the answer's header is larger than the limit of 8 KiB";
      } else if (ec == http::error::buffer_overflow) {
        c.detail = fmt::format("the answer's framing holds more than {} KiB unparsed",
                               link<Stream>::read_buffer_limit / 1024);
      } else if (ec == http::error::partial_message) {
        c.detail = "the answer was cut short (the connection closed in the middle of it)";
      } else if (ec != http::error::end_of_stream &&
                 ec.category() == make_error_code(http::error::bad_version).category()) {
        c.detail = fmt::format("the answer is not valid HTTP/1.1: {}", ec.message());
      }
      r.detail = c.detail;
      co_return;
    }
    auto& res = parser.get();
    r.answered = true;
    r.http_status = static_cast<int>(res.result_int());
    r.keep_alive = res.keep_alive();
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      c.retry_after = std::string(it->value());
      r.retry_after = c.retry_after;
    }
    if (auto it = res.find(http::field::date); it != res.end()) {
      c.date = std::string(it->value());
      r.date = c.date;
    }
    r.body = c.answer.view();
    r.readable = c.answer.readable();
    if constexpr (is_tls<Stream>) {
      if (!c.session_saved) {  // after the first answer: TLS 1.3 tickets have arrived
        if (SSL_SESSION* s2 = SSL_get1_session(c.stream->native_handle())) {
          if (c.session) SSL_SESSION_free(c.session);
          c.session = s2;
        }
        c.session_saved = true;
      }
    }
  }
};

}  // namespace fleetcast::net
