// secret_registry and outside_text: each form of each secret redacted, text
// from outside bounded and valid UTF-8 whatever comes in.
#include <fleetcast/core/output/secret_registry.hpp>

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

namespace fleetcast {
namespace {

// Valid UTF-8 with no control character (what every output needs).
bool clean_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80             ? 1
                    : (b & 0xE0) == 0xC0 ? 2
                    : (b & 0xF0) == 0xE0 ? 3
                    : (b & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (n == 0 || i + n > s.size()) return false;
    if (b < 0x20 || b == 0x7F) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST_CASE("every form of a token is redacted: as sent, without Bearer, percent-encoded") {
  secret_registry r;
  const std::string token = "Bearer eyJhbGciOi.payload+/=.sig";
  r.add(token);
  CHECK(r.mentions("echo: " + token));
  CHECK(r.redacted("echo: " + token + " end") == "echo: [redacted] end");
  CHECK(r.redacted("bare eyJhbGciOi.payload+/=.sig") == "bare [redacted]");
  CHECK(r.redacted("query refreshToken=eyJhbGciOi.payload%2B%2F%3D.sig&x") ==
        "query refreshToken=[redacted]&x");
  CHECK(r.redacted("twice " + token + token) == "twice [redacted][redacted]");
  CHECK_FALSE(r.mentions("nothing here"));
  CHECK(r.redacted("nothing here") == "nothing here");
}

TEST_CASE("proxy credentials: the password, user:password and its Basic form") {
  secret_registry r;
  r.add_credentials("operator", "s3cret-pass");
  CHECK(r.redacted("407 for operator:s3cret-pass") == "407 for [redacted]");
  // base64("operator:s3cret-pass"), as Proxy-Authorization: Basic carries it.
  CHECK(r.redacted("got Basic b3BlcmF0b3I6czNjcmV0LXBhc3M=") == "got Basic [redacted]");
  CHECK(r.redacted("pw s3cret-pass") == "pw [redacted]");
  CHECK(r.redacted("the user operator alone") == "the user operator alone");
}

TEST_CASE("a form shorter than min_length is not looked for") {
  secret_registry r;
  r.add("short");
  CHECK(r.size() == 0);
  CHECK(r.redacted("a short word") == "a short word");
}

TEST_CASE("readers on other threads see a secret added after their first look") {
  secret_registry r;
  r.add("first-secret-1234");
  std::vector<std::thread> readers;
  std::vector<int> saw(4, 0);
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      CHECK(r.mentions("x first-secret-1234"));  // a look before the second is added
      while (!r.mentions("y second-secret-5678")) std::this_thread::yield();
      saw[t] = 1;
    });
  }
  r.add("second-secret-5678");
  for (auto& th : readers) th.join();
  CHECK(saw == std::vector<int>(4, 1));
}

TEST_CASE("outside text: bounded, the cut said, valid UTF-8, no control characters") {
  const std::string huge(900 * 1024, 'x');
  const auto t = outside_text(huge);
  CHECK(t.size() <= outside_text_max);
  CHECK(t.find("[921600 bytes]") != std::string::npos);
  CHECK(clean_utf8(t));

  // Raw bytes that are not UTF-8, controls, a terminal escape, a C1 CSI, a
  // bidi override.
  const std::string hostile =
      "ok \xff\xfe bad \x1b[31mred\x07 \xc2\x9b"
      "2J \xe2\x80\xae"
      "evil\r\nnext";
  const auto h = outside_text(hostile);
  CHECK(clean_utf8(h));
  CHECK(h.find('\x1b') == std::string::npos);
  CHECK(h.find("\xe2\x80\xae") == std::string::npos);
  CHECK(h.find("ok ") == 0);
  CHECK(h.find("next") != std::string::npos);

  // Overlong encodings and surrogates are not valid UTF-8 either.
  CHECK(clean_utf8(outside_text("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80")));
  // A character is never cut in half.
  const std::string wide(600, 'a');
  const auto w = outside_text(wide + "\xe2\x82\xac\xe2\x82\xac", 100);
  CHECK(w.size() <= 100);
  CHECK(clean_utf8(w));
  // Short and clean passes unchanged.
  CHECK(outside_text("Bad Gateway") == "Bad Gateway");
}

TEST_CASE("outside text is redacted before it is cut: no half secret at the edge") {
  auto& r = secret_registry::process();
  const std::string secret = "Bearer cut-at-the-edge-token-0123456789";
  r.add(secret);
  // The secret straddles byte 100: cut first, half of it would stay.
  const std::string text = std::string(70, '.') + secret + std::string(200, '.');
  const auto t = outside_text(text, 100);
  CHECK(t.find("cut-at") == std::string::npos);
  CHECK(t.find("[redacted]") != std::string::npos);
}

TEST_CASE("cut_text keeps whole characters and says it cut") {
  CHECK(cut_text("short", 256) == "short");
  const auto c = cut_text(std::string(300, 'a'), 256);
  CHECK(c.size() <= 256);
  CHECK(c.ends_with("\xe2\x80\xa6"));
  const auto e = cut_text(std::string(254, 'a') + "\xe2\x82\xac\xe2\x82\xac", 256);
  CHECK(clean_utf8(e));
  CHECK(e.size() <= 256);
}

}  // namespace
}  // namespace fleetcast
