// Self-signed certificates with OpenSSL 3 (see tls_identity.hpp).
#include "net/server/tls_identity.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace fleetcast::net {
namespace {

[[noreturn]] void fail(const std::string& what) {
  char reason[256] = "unknown reason";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, reason, sizeof reason);
  throw std::runtime_error(what + ": " + reason);
}

template <typename T, void (*Free)(T*)>
using owned = std::unique_ptr<T, decltype([](T* p) { Free(p); })>;

std::string pem_of(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  owned<X509_EXTENSION, X509_EXTENSION_free> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) fail("certificate extension " + value);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

tls_identity make_self_signed_identity(const std::vector<std::string>& dns_names,
                                       const std::vector<std::string>& ip_addresses) {
  owned<EVP_PKEY, EVP_PKEY_free> key(EVP_EC_gen("P-256"));
  if (!key) fail("generating a P-256 key");
  owned<X509, X509_free> cert(X509_new());
  if (!cert) fail("creating a certificate");
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("random serial");
  serial[0] &= 0x7F;
  owned<BIGNUM, BN_free> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = dns_names.empty() ? "fleetcast emulator" : dns_names.front();
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fleetcast emulator"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) add_extension(cert.get(), NID_subject_alt_name, san);
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
  add_extension(cert.get(), NID_subject_key_identifier, "hash");
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) fail("signing the certificate");

  owned<BIO, BIO_free_all> cert_bio(BIO_new(BIO_s_mem()));
  owned<BIO, BIO_free_all> key_bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(cert_bio.get(), cert.get())) fail("writing the certificate");
  if (!PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    fail("writing the key");
  }
  return {pem_of(cert_bio.get()), pem_of(key_bio.get())};
}

tls_identity load_tls_identity(const std::string& cert_file, const std::string& key_file) {
  return {read_file(cert_file), read_file(key_file)};
}

}  // namespace fleetcast::net
