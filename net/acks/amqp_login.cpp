// The subscription's SASL PLAIN credentials (see amqp_login.hpp).
#include "net/acks/amqp_login.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>
#include <cstdlib>

namespace fleetcast::net {

namespace {

std::string sha256_hex(std::string_view a, std::string_view b) {
  unsigned char digest[32];
  unsigned int size = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  EVP_DigestUpdate(ctx, b.data(), b.size());
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof digest);
  for (unsigned char c : digest) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

constexpr std::string_view prefix = "ver=1&auth_mode=accessKey&sign_method=sha256&access_key=";

}  // namespace

std::string credential_digest(std::string_view access_key, std::string_view access_secret) {
  return sha256_hex(std::string(access_key) + '\n', access_secret);
}

amqp_login make_amqp_login(std::string_view access_key, std::string_view access_secret,
                           std::int64_t now_ms) {
  amqp_login l;
  l.username.reserve(prefix.size() + access_key.size() + 32);
  l.username.append(prefix).append(access_key).append("&timestamp=").append(std::to_string(now_ms));
  l.password = sha256_hex(l.username, access_secret);
  return l;
}

std::string check_amqp_login(std::string_view username, std::string_view password,
                             std::string_view access_key, std::string_view access_secret,
                             std::int64_t now_ms) {
  // The pairs in any order; each of the five exactly as documented.
  std::string_view ver, mode, method, key, stamp;
  std::string_view rest = username;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) return "a username pair without '='";
    const auto name = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (name == "ver")
      ver = value;
    else if (name == "auth_mode")
      mode = value;
    else if (name == "sign_method")
      method = value;
    else if (name == "access_key")
      key = value;
    else if (name == "timestamp")
      stamp = value;
    else
      return "an unknown username pair";
  }
  if (ver != "1" || mode != "accessKey" || method != "sha256")
    return "username must say ver=1, auth_mode=accessKey, sign_method=sha256";
  if (key != access_key) return "unknown access_key";
  std::int64_t ts = 0;
  const auto r = std::from_chars(stamp.data(), stamp.data() + stamp.size(), ts);
  if (stamp.empty() || r.ec != std::errc() || r.ptr != stamp.data() + stamp.size())
    return "timestamp is not a number of ms";
  if (std::llabs(now_ms - ts) > 10 * 60 * 1000) return "timestamp more than 10 minutes off";
  const std::string want = sha256_hex(username, access_secret);
  if (password.size() != want.size() ||
      CRYPTO_memcmp(password.data(), want.data(), want.size()) != 0)
    return "password is not the SHA-256 of username and AccessSecret";
  return {};
}

}  // namespace fleetcast::net
