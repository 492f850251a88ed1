#include "core/job/json_locate.hpp"

#include <vector>

namespace fleetcast {
namespace {

// A walk over a valid JSON text that follows one path of object keys.
class locator {
 public:
  locator(std::string_view text, std::string_view path) : text_(text) {
    while (!path.empty()) {
      const auto dot = path.find('.');
      parts_.push_back(path.substr(0, dot));
      path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
  }

  std::optional<json_position> run() {
    skip_space();
    value(0, true);
    return found_;
  }

 private:
  // `on_path`: this value is where parts_[0..depth) lead.
  void value(std::size_t depth, bool on_path) {
    skip_space();
    if (i_ >= text_.size()) return;
    const char c = text_[i_];
    if (c == '{') {
      object(depth, on_path);
    } else if (c == '[') {
      next();
      skip_space();
      if (peek() == ']') {
        next();
        return;
      }
      for (;;) {
        value(depth, false);
        skip_space();
        if (peek() == ',') {
          next();
          continue;
        }
        next();  // ']'
        return;
      }
    } else if (c == '"') {
      string();
    } else {
      while (i_ < text_.size() && text_[i_] != ',' && text_[i_] != '}' && text_[i_] != ']' &&
             text_[i_] != ' ' && text_[i_] != '\n' && text_[i_] != '\t' && text_[i_] != '\r')
        next();
    }
  }

  void object(std::size_t depth, bool on_path) {
    next();  // '{'
    skip_space();
    if (peek() == '}') {
      next();
      return;
    }
    bool matched = false;
    for (;;) {
      skip_space();
      const json_position at{line_, column_};
      const auto key = string();
      const bool match = on_path && !matched && depth < parts_.size() && key == parts_[depth];
      if (match) {
        matched = true;
        found_ = at;
      }
      skip_space();
      next();  // ':'
      value(depth + 1, match);
      skip_space();
      if (peek() == ',') {
        next();
        continue;
      }
      next();  // '}'
      return;
    }
  }

  // A string token; its raw text (escapes as written: keys here are plain).
  std::string_view string() {
    next();  // '"'
    const std::size_t start = i_;
    while (i_ < text_.size() && text_[i_] != '"') {
      if (text_[i_] == '\\') next();
      next();
    }
    const auto s = text_.substr(start, i_ - start);
    next();  // '"'
    return s;
  }

  char peek() const { return i_ < text_.size() ? text_[i_] : '\0'; }
  void next() {
    if (i_ >= text_.size()) return;
    if (text_[i_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++i_;
  }
  void skip_space() {
    while (i_ < text_.size() &&
           (text_[i_] == ' ' || text_[i_] == '\n' || text_[i_] == '\t' || text_[i_] == '\r'))
      next();
  }

  std::string_view text_;
  std::vector<std::string_view> parts_;
  std::size_t i_ = 0;
  std::uint64_t line_ = 1, column_ = 1;
  std::optional<json_position> found_;
};

}  // namespace

std::optional<json_position> locate_json_field(std::string_view text, std::string_view path) {
  if (path.empty()) return std::nullopt;
  return locator(text, path).run();
}

}  // namespace fleetcast
