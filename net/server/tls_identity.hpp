// tls_identity: a certificate and private key in PEM, loaded from files or
// generated as a self-signed certificate for loopback rehearsals.
#pragma once

#include <string>
#include <vector>

namespace fleetcast::net {

struct tls_identity {
  std::string cert_pem;
  std::string key_pem;
};

// A fresh P-256 key and a self-signed certificate (valid from one hour ago
// for 30 days, usable as its own CA) naming `dns_names` and `ip_addresses`
// in subjectAltName. Throws std::runtime_error with OpenSSL's reason.
tls_identity make_self_signed_identity(const std::vector<std::string>& dns_names,
                                       const std::vector<std::string>& ip_addresses);

// Reads PEM files; throws std::runtime_error naming the file on failure.
tls_identity load_tls_identity(const std::string& cert_file, const std::string& key_file);

}  // namespace fleetcast::net
