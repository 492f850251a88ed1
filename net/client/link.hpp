// link: one keep-alive connection of the rollout driver (net/client) and
// what it reuses from request to request; internal to net/client.
#pragma once

#include "net/client/padded_body.hpp"

#include <fleetcast/net/client/rollout.hpp>
#include "core/protocol/response_decoder.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include <cerrno>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include <sys/socket.h>

namespace fleetcast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

using tls_stream = beast::ssl_stream<beast::tcp_stream>;
template <typename Stream>
constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

// What every connection has, whatever its stream: its timer (for waits),
// a way to cut it (a second cancel), and what a pool asks of it.
struct link_base {
  asio::steady_timer timer;
  bool from_pool = false;      // open when taken from a pool: no handshake needed
  bool connecting = false;     // in connect (a proxy's tunnel, a handshake): nothing sent yet
  bool cut_requested = false;  // cut() came (perhaps before there was a socket to close)
  std::chrono::steady_clock::time_point idle_since{};
  explicit link_base(const asio::any_io_executor& ex) : timer(ex) {}
  virtual ~link_base() = default;
  virtual void cut() = 0;
  virtual bool tls() const noexcept = 0;
  // Open, nothing unread, and the peer has not closed it or sent anything
  // (a peek that would block): safe to write the next request on.
  virtual bool reusable() = 0;
};

// One keep-alive connection and what it reuses from request to request.
template <typename Stream>
struct link final : link_base {
  std::optional<Stream> stream;
  SSL_SESSION* session = nullptr;  // resumed on reconnect
  bool session_saved = false;
  // Bytes read but not yet parsed: a header (at most 8 KiB) and one read of
  // at most 64 KiB; the body goes to `answer` as it arrives, so a cap here
  // bounds what a connection holds besides the answer (max_answer_bytes).
  static constexpr std::size_t read_buffer_limit = 256 * 1024;
  beast::flat_buffer buffer{read_buffer_limit};
  padded_buffer answer{response_decoder::padding};  // the last answer's body
  std::string retry_after, detail, date;            // of the last answer

  explicit link(const asio::any_io_executor& ex) : link_base(ex) {}
  ~link() override {
    if (session) SSL_SESSION_free(session);
  }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(*stream); }
  void close() {
    stream.reset();
    buffer.clear();
    session_saved = false;
  }
  void cut() override {
    cut_requested = true;
    if (!stream) return;
    boost::system::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }
  bool tls() const noexcept override { return is_tls<Stream>; }
  bool reusable() override {
    if (!stream || buffer.size() != 0 || !lowest().socket().is_open()) return false;
    char byte;
    const auto n = ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

// The pool's keeping (see connection_pool in rollout.hpp).
struct connection_pool::impl {
  std::chrono::milliseconds idle_timeout;
  std::deque<std::unique_ptr<link_base>> idle;  // the most recently used last
  std::uint64_t opened = 0, reused = 0;

  // An idle connection of this kind that is still good, or null.
  std::unique_ptr<link_base> take(bool tls) {
    const auto now = std::chrono::steady_clock::now();
    while (!idle.empty()) {
      auto l = std::move(idle.back());
      idle.pop_back();
      if (l->tls() == tls && now - l->idle_since < idle_timeout && l->reusable()) {
        ++reused;
        l->from_pool = true;
        return l;
      }  // else closed here: stale, closed by the server, or of another kind
    }
    return nullptr;
  }
  void give(std::unique_ptr<link_base> l) {
    l->idle_since = std::chrono::steady_clock::now();
    idle.push_back(std::move(l));
  }
};

}  // namespace fleetcast::net
