// listen.hpp: "HOST:PORT" or "[ADDRESS]:PORT" to a TCP endpoint, for the
// servers in fleetcast::net (the emulator, the daemon's admin port).
// Internal to fleetcast::net.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <stdexcept>
#include <string>

namespace fleetcast::net::detail {

// Throws std::runtime_error naming what is wrong with `listen`.
inline boost::asio::ip::tcp::endpoint parse_listen(const std::string& listen) {
  std::string host, port;
  if (listen.starts_with('[')) {
    const auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      throw std::runtime_error("listen \"" + listen + "\": expected [ADDRESS]:PORT");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos)
      throw std::runtime_error("listen \"" + listen + "\": expected HOST:PORT");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec)
    throw std::runtime_error("listen \"" + listen + "\": \"" + host + "\" is not an IP address");
  unsigned long p = 0;
  try {
    p = std::stoul(port);
  } catch (const std::exception&) {
    p = 70000;
  }
  if (p > 65535) throw std::runtime_error("listen \"" + listen + "\": bad port");
  return {address, static_cast<unsigned short>(p)};
}

// Opens, binds and listens (address reuse on); throws std::runtime_error
// "`what` HOST:PORT: why" when any step fails.
inline void listen_on(boost::asio::ip::tcp::acceptor& acceptor,
                      const boost::asio::ip::tcp::endpoint& endpoint, const std::string& what) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(what + ": " + ec.message());
}

}  // namespace fleetcast::net::detail
