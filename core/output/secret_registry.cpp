// The secrets a process holds, and outside text made safe to keep (see
// secret_registry.hpp).
#include <fleetcast/core/output/secret_registry.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace fleetcast {

namespace {

std::string percent_encoded(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string base64_of(std::string_view bytes) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                       static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += table[v >> shift & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += table[v >> 18 & 63];
    out += table[v >> 12 & 63];
    out += i + 1 < bytes.size() ? table[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

// The length of the UTF-8 sequence at `s` (1 to 4), or 0 when it is not a
// valid one (overlong, a surrogate, beyond U+10FFFF, cut short).
std::size_t utf8_sequence(std::string_view s, std::uint32_t& cp) noexcept {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t n;
  std::uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Characters that steer a terminal or a viewer: C0 and C1 controls, DEL,
// the bidirectional embeddings, overrides and isolates.
bool steering(std::uint32_t cp) noexcept {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view ellipsis = "\xE2\x80\xA6";     // U+2026

// Where to cut valid UTF-8 so that at most `max` bytes are kept.
std::size_t boundary_at_most(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s.size();
  std::size_t at = max;
  while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) --at;
  return at;
}

}  // namespace

secret_registry& secret_registry::process() {
  static secret_registry r;
  return r;
}

void secret_registry::add_form(std::string form) {
  if (form.size() < min_length) return;
  std::lock_guard lock(mutex_);
  if (std::find(forms_->begin(), forms_->end(), form) != forms_->end()) return;
  auto next = std::make_shared<list>(*forms_);
  next->push_back(std::move(form));
  std::stable_sort(next->begin(), next->end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  shortest_.store(next->back().size(), std::memory_order_relaxed);
  forms_ = std::move(next);
  generation_.fetch_add(1, std::memory_order_release);
}

void secret_registry::add(std::string_view secret) {
  if (secret.empty()) return;
  add_form(std::string(secret));
  std::string_view bare = secret;
  if (bare.size() > 7 && (bare.starts_with("Bearer ") || bare.starts_with("bearer "))) {
    bare.remove_prefix(7);
    add_form(std::string(bare));
  }
  if (auto encoded = percent_encoded(secret); encoded != secret) add_form(std::move(encoded));
  if (auto encoded = percent_encoded(bare); encoded != bare) add_form(std::move(encoded));
}

void secret_registry::add_credentials(std::string_view user, std::string_view password) {
  if (password.empty()) return;
  add(password);
  const auto pair = fmt::format("{}:{}", user, password);
  add_form(pair);
  add_form(base64_of(pair));
}

std::shared_ptr<const secret_registry::list> secret_registry::snapshot() const {
  // Each thread keeps the set it saw last; it asks again only when a secret
  // was added since (the generation moved).
  struct seen {
    const secret_registry* owner = nullptr;
    std::uint64_t generation = 0;
    std::shared_ptr<const list> forms;
  };
  thread_local seen cache;
  const auto g = generation_.load(std::memory_order_acquire);
  if (cache.owner != this || cache.generation != g || !cache.forms) {
    std::lock_guard lock(mutex_);
    cache.owner = this;
    cache.generation = generation_.load(std::memory_order_relaxed);
    cache.forms = forms_;
  }
  return cache.forms;
}

bool secret_registry::mentions(std::string_view text) const {
  if (text.size() < shortest_.load(std::memory_order_relaxed)) return false;
  const auto forms = snapshot();
  // Longest first: the forms that can fit in `text` start here.
  const auto from = std::partition_point(
      forms->begin(), forms->end(), [&](const std::string& f) { return f.size() > text.size(); });
  for (auto it = from; it != forms->end(); ++it)
    if (text.find(*it) != std::string_view::npos) return true;
  return false;
}

void secret_registry::redact(std::string& text) const {
  if (text.size() < shortest_.load(std::memory_order_relaxed)) return;
  const auto forms = snapshot();
  for (const auto& f : *forms) {
    if (f.size() > text.size()) continue;  // (text shrinks as secrets are replaced)
    for (auto at = text.find(f); at != std::string::npos; at = text.find(f, at + mark.size()))
      text.replace(at, f.size(), mark);
  }
}

std::string secret_registry::redacted(std::string_view text) const {
  std::string s(text);
  redact(s);
  return s;
}

std::size_t secret_registry::size() const {
  std::lock_guard lock(mutex_);
  return forms_->size();
}

std::string cut_text(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  const std::size_t keep = boundary_at_most(text, max_bytes > 3 ? max_bytes - 3 : 0);
  std::string out(text.substr(0, keep));
  if (max_bytes >= 3) out += ellipsis;
  return out;
}

std::string outside_text(std::string_view raw, std::size_t max_bytes) {
  // Redacted first, whole: a cut must not leave half a secret behind.
  std::string text = secret_registry::process().redacted(raw);
  std::string clean;
  clean.reserve(std::min(text.size(), max_bytes) + 8);
  std::string_view rest = text;
  // Past twice the bound nothing more is looked at: the cut comes anyway.
  const std::size_t look = std::min<std::size_t>(rest.size(), 2 * max_bytes + 16);
  std::string_view window = rest.substr(0, look);
  while (!window.empty()) {
    std::uint32_t cp = 0;
    const std::size_t n = utf8_sequence(window, cp);
    if (n == 0) {
      clean += replacement;
      window.remove_prefix(1);
    } else {
      if (steering(cp))
        clean += cp == '\t' || cp == '\n' || cp == '\r' ? std::string_view(" ") : replacement;
      else
        clean.append(window.data(), n);
      window.remove_prefix(n);
    }
  }
  if (clean.size() <= max_bytes && look == text.size()) return clean;
  const auto said = fmt::format("{} [{} bytes]", ellipsis, text.size());
  const std::size_t room = max_bytes > said.size() ? max_bytes - said.size() : 0;
  clean.resize(boundary_at_most(clean, room));
  clean += said;
  return clean;
}

}  // namespace fleetcast
