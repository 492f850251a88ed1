// tls_client (see rollout.hpp): the trust store loaded once into an OpenSSL
// client context that rollouts share.
#include "net/client/tls_context.hpp"

#include <fmt/format.h>
#include <boost/asio/buffer.hpp>

#include <openssl/ssl.h>

namespace fleetcast::net {

namespace asio = boost::asio;

tls_client::tls_client(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
tls_client::~tls_client() = default;

std::shared_ptr<tls_client> tls_client::make(const tls_config& tls, std::string& error,
                                             std::string_view extra_ca_pem,
                                             bool system_trust_store) {
  auto i = std::make_unique<impl>();
  auto& ctx = i->ctx;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(ctx.native_handle(), SSL_SESS_CACHE_CLIENT);
  boost::system::error_code ec;
  if (tls.ca_file) {
    ctx.load_verify_file(*tls.ca_file, ec);
    if (ec) {
      error = fmt::format("tls.ca_file: {}: {}", *tls.ca_file, ec.message());
      return nullptr;
    }
  } else if (system_trust_store) {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      error = "the system trust store cannot be loaded: " + ec.message();
      return nullptr;
    }
  }
  if (!extra_ca_pem.empty()) {
    ctx.add_certificate_authority(asio::buffer(extra_ca_pem.data(), extra_ca_pem.size()), ec);
    if (ec) {
      error = "extra CA certificate: " + ec.message();
      return nullptr;
    }
  }
  ctx.set_verify_mode(tls.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return std::shared_ptr<tls_client>(new tls_client(std::move(i)));
}

}  // namespace fleetcast::net
