// A small recursive-descent JSON checker that only locates errors.
#include "core/job/json_syntax.hpp"

#include "core/protocol/validation.hpp"

#include <fmt/format.h>

#include <cctype>

namespace fleetcast {
namespace {

class checker {
 public:
  checker(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  std::optional<json_syntax_error> run() {
    if (s_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
    skip_space();
    if (!value(0)) return error_;
    skip_space();
    if (pos_ != s_.size()) return fail("unexpected content after the JSON value");
    if (!is_valid_utf8(s_)) {
      pos_ = 0;
      return fail("the text is not valid UTF-8");
    }
    return std::nullopt;
  }

 private:
  json_syntax_error fail(std::string message) {
    json_syntax_error e;
    for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++e.line;
        e.column = 1;
      } else {
        ++e.column;
      }
    }
    e.message = std::move(message);
    error_ = e;
    return e;
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_space() {
    while (!at_end() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool expect_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) {
      fail(fmt::format("invalid literal (expected {})", w));
      return false;
    }
    pos_ += w.size();
    return true;
  }

  bool value(int depth) {
    if (depth > max_depth_) {
      fail(fmt::format("nesting deeper than {} levels", max_depth_));
      return false;
    }
    if (at_end()) {
      fail("unexpected end of input (expected a value)");
      return false;
    }
    switch (peek()) {
      case '{':
        return object(depth + 1);
      case '[':
        return array(depth + 1);
      case '"':
        return string();
      case 't':
        return expect_word("true");
      case 'f':
        return expect_word("false");
      case 'n':
        return expect_word("null");
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return number();
        fail(fmt::format("unexpected character '{}' (expected a value)", printable(peek())));
        return false;
    }
  }

  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F ? std::string(1, c) : fmt::format("\\x{:02x}", u);
  }

  bool object(int depth) {
    ++pos_;  // {
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_space();
      if (peek() != '"') {
        fail(at_end() ? "unexpected end of input inside an object"
                      : "expected a field name in double quotes");
        return false;
      }
      if (!string()) return false;
      skip_space();
      if (peek() != ':') {
        fail("expected ':' after a field name");
        return false;
      }
      ++pos_;
      skip_space();
      if (!value(depth)) return false;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      fail(at_end() ? "unexpected end of input inside an object (missing '}')"
                    : "expected ',' or '}' after a value in an object");
      return false;
    }
  }

  bool array(int depth) {
    ++pos_;  // [
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skip_space();
      if (!value(depth)) return false;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      fail(at_end() ? "unexpected end of input inside an array (missing ']')"
                    : "expected ',' or ']' after a value in an array");
      return false;
    }
  }

  bool string() {
    ++pos_;  // opening quote
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) {
        fail("control character inside a string (escape it, e.g. \\n)");
        return false;
      }
      if (c == '\\') {
        ++pos_;
        const char e = peek();
        if (e == 'u') {
          for (int i = 1; i <= 4; ++i) {
            const char h = pos_ + i < s_.size() ? s_[pos_ + i] : '\0';
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              fail("invalid \\u escape (expected 4 hex digits)");
              return false;
            }
          }
          pos_ += 5;
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos || at_end()) {
          fail("invalid escape sequence in a string");
          return false;
        }
      }
      ++pos_;
    }
    fail("unexpected end of input inside a string (missing '\"')");
    return false;
  }

  bool number() {
    const auto digits = [&] {
      const std::size_t start = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ > start;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      fail("invalid number");
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (!digits()) {
        fail("invalid number (digits expected after '.')");
        return false;
      }
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) {
        fail("invalid number (digits expected in the exponent)");
        return false;
      }
    }
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  int max_depth_;
  json_syntax_error error_;
};

}  // namespace

std::optional<json_syntax_error> find_json_syntax_error(std::string_view text, int max_depth) {
  return checker(text, max_depth).run();
}

}  // namespace fleetcast
