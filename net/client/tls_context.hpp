// The inside of tls_client (rollout.hpp): one OpenSSL client context, for
// the driver (rollout.cpp) and its maker (tls_client.cpp).
#pragma once

#include <fleetcast/net/client/rollout.hpp>

#include <boost/asio/ssl/context.hpp>

namespace fleetcast::net {

struct tls_client::impl {
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_client};
};

}  // namespace fleetcast::net
