// secret_registry: every secret this process holds (access and refresh
// tokens, proxy credentials, the subscription's AccessKey and AccessSecret),
// so that no outward text shows one, whoever echoes it: a server, a proxy,
// a refresh endpoint or a broker. Each secret is added where it is read;
// every outward writer (result lines, summaries, logs, standard error, the
// admin port's answers) passes its text through redact(). Thread-safe;
// readers take no lock once their thread has seen the current set.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

class secret_registry {
 public:
  // The process's registry: the one every part of fleetcast adds to and
  // redacts with (the daemon's jobs and a library's sessions alike).
  static secret_registry& process();

  // What a secret is replaced with.
  static constexpr std::string_view mark = "[redacted]";
  // Forms shorter than this are not looked for: they cannot be told from
  // ordinary text (a ticket, a word), so they are no secret worth the name.
  static constexpr std::size_t min_length = 8;

  secret_registry() = default;
  secret_registry(const secret_registry&) = delete;
  secret_registry& operator=(const secret_registry&) = delete;

  // Adds `secret` and the forms a peer may echo it in: as given, without a
  // leading "Bearer ", and percent-encoded (a token in a query string).
  void add(std::string_view secret);
  // A user and password (a proxy's): the password, "user:password" and its
  // Basic form (base64), as a Proxy-Authorization header carries them.
  void add_credentials(std::string_view user, std::string_view password);

  // Whether `text` holds a secret. Fast for text shorter than every secret.
  bool mentions(std::string_view text) const;
  // Every secret in `text` replaced with `mark`, longest form first.
  std::string redacted(std::string_view text) const;
  void redact(std::string& text) const;

  std::size_t size() const;  // forms known

 private:
  using list = std::vector<std::string>;  // longest first
  std::shared_ptr<const list> snapshot() const;
  void add_form(std::string form);

  mutable std::mutex mutex_;
  std::shared_ptr<const list> forms_ = std::make_shared<const list>();
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::size_t> shortest_{SIZE_MAX};
};

// Text that comes from outside (a server's msg, a proxy's status line, a
// refresh endpoint's error, a broker's condition) made fit to keep and show:
// secrets redacted, then valid UTF-8 (a bad byte becomes U+FFFD), control
// characters and bidirectional overrides replaced (a terminal or a log
// viewer must not be steered by it), and cut to at most `max_bytes` bytes
// at a character boundary, the cut said ("… [N bytes]").
inline constexpr std::size_t outside_text_max = 512;
std::string outside_text(std::string_view raw, std::size_t max_bytes = outside_text_max);

// A job's reason (our words around outside text) is at most this long.
inline constexpr std::size_t reason_text_max = 1024;

// A message in a device's result line is at most this long: the whole
// message of a failure that many devices share is kept once (summary.json's
// reason, the log), not copied into every line.
inline constexpr std::size_t line_message_max = 256;
// `text` cut to at most `max_bytes` at a UTF-8 character boundary, with "…"
// when cut (valid UTF-8 in, valid UTF-8 out).
std::string cut_text(std::string_view text, std::size_t max_bytes);

}  // namespace fleetcast
