// The CSV, NDJSON and JSON-array device readers (see device_reader.hpp).
#include <fleetcast/core/input/device_reader.hpp>

#include <sstream>

#include "core/input/device_object_parser.hpp"
#include "core/input/line_reader.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <deque>
#include <vector>

namespace fleetcast {

std::optional<device_format> format_from_path(std::string_view path) noexcept {
  auto ends_with = [&](std::string_view suffix) {
    if (path.size() < suffix.size()) return false;
    auto tail = path.substr(path.size() - suffix.size());
    for (std::size_t i = 0; i < suffix.size(); ++i) {
      char c = tail[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != suffix[i]) return false;
    }
    return true;
  };
  if (ends_with(".csv")) return device_format::csv;
  if (ends_with(".ndjson") || ends_with(".jsonl")) return device_format::ndjson;
  if (ends_with(".json")) return device_format::json_array;
  return std::nullopt;
}

std::string_view to_string(device_format f) noexcept {
  switch (f) {
    case device_format::csv:
      return "csv";
    case device_format::ndjson:
      return "ndjson";
    case device_format::json_array:
      return "json";
  }
  return "unknown";
}

namespace {

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

std::string_view strip_bom(std::string_view s) {
  return s.starts_with("\xEF\xBB\xBF") ? s.substr(3) : s;
}

// A NUL byte: a sparse or binary file, a device like /dev/zero. Refused at
// once, not read to its end.
std::string not_text(std::uint64_t offset) {
  return fmt::format("byte {} is a NUL: this is not a text device list (a binary or sparse file?)",
                     offset);
}

// ---------------------------------------------------------------- CSV

class csv_reader final : public device_reader {
 public:
  csv_reader(std::istream& in, const device_reader_config& config)
      : lines_(in, config.max_line_bytes), max_line_(config.max_line_bytes) {}

  bool next(device_record& out) override {
    line_reader::line line;
    for (;;) {
      if (!lines_.next(line)) {
        if (lines_.failed()) fatal_ = fmt::format("read error after line {}", line.number);
        if (lines_.binary()) fatal_ = not_text(lines_.nul_offset());
        if (!have_header_ && fatal_.empty()) fatal_ = "the file is empty (no header row)";
        return false;
      }
      if (!line.too_long && is_blank(line.text)) continue;
      if (!have_header_) {
        if (!read_header(line)) return false;
        continue;
      }
      break;
    }
    out.index = index_++;
    out.line = line.number;
    out.device = {};
    out.problem.clear();
    if (line.too_long) {
      out.problem = fmt::format("line {}: longer than {} bytes", line.number, max_line_);
      return true;
    }
    std::string problem;
    if (!split(line.text, problem)) {
      out.problem = fmt::format("line {}: {}", line.number, problem);
      return true;
    }
    if (fields_.size() != columns_.size()) {
      out.problem = fmt::format("line {}: {} field{}, but the header has {} columns", line.number,
                                fields_.size(), fields_.size() == 1 ? "" : "s", columns_.size());
      return true;
    }
    std::string_view* targets[4] = {&out.device.product_key, &out.device.device_key,
                                    &out.device.gateway_product_key,
                                    &out.device.gateway_device_key};
    for (std::size_t i = 0; i < columns_.size(); ++i) *targets[columns_[i]] = fields_[i];
    return true;
  }

 private:
  bool read_header(const line_reader::line& line) {
    std::string problem;
    if (line.too_long || !split(strip_bom(line.text), problem)) {
      fatal_ = fmt::format("line {}: the header row cannot be read{}{}", line.number,
                           problem.empty() ? "" : ": ", problem);
      return false;
    }
    static constexpr std::array<std::string_view, 4> names = {
        "productKey", "deviceKey", "gatewayProductKey", "gatewayDeviceKey"};
    bool seen[4] = {};
    for (auto f : fields_) {
      int which = -1;
      for (int i = 0; i < 4; ++i) {
        if (f == names[i]) which = i;
      }
      if (which < 0) {
        fatal_ = fmt::format(
            "line {}: unknown column \"{}\"; the first line must be a header row naming "
            "productKey,deviceKey[,gatewayProductKey,gatewayDeviceKey]",
            line.number, f);
        return false;
      }
      if (seen[which]) {
        fatal_ = fmt::format("line {}: column \"{}\" appears twice", line.number, f);
        return false;
      }
      seen[which] = true;
      columns_.push_back(which);
    }
    if (!seen[0] || !seen[1]) {
      fatal_ = fmt::format("line {}: the header row has no \"{}\" column", line.number,
                           seen[0] ? "deviceKey" : "productKey");
      return false;
    }
    if (seen[2] != seen[3]) {
      fatal_ = fmt::format("line {}: gatewayProductKey and gatewayDeviceKey columns go together",
                           line.number);
      return false;
    }
    scratch_.resize(columns_.size() + 1);
    have_header_ = true;
    return true;
  }

  // RFC 4180 fields of one line: quoted fields may hold commas and doubled
  // quotes, but not line breaks; spaces around unquoted fields are trimmed.
  bool split(std::string_view s, std::string& problem) {
    fields_.clear();
    std::size_t pos = 0;
    for (;;) {
      while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
      if (pos < s.size() && s[pos] == '"') {
        const std::size_t n = fields_.size();
        std::string& buf = n < scratch_.size() ? scratch_[n] : scratch_.emplace_back();
        buf.clear();
        ++pos;
        for (;;) {
          if (pos >= s.size()) {
            problem = "unterminated quoted field (a field cannot span lines)";
            return false;
          }
          if (s[pos] == '"') {
            if (pos + 1 < s.size() && s[pos + 1] == '"') {
              buf += '"';
              pos += 2;
              continue;
            }
            ++pos;
            break;
          }
          buf += s[pos++];
        }
        while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) ++pos;
        fields_.push_back(buf);
        if (pos < s.size() && s[pos] != ',') {
          problem = fmt::format("unexpected character after a quoted field at column {}", pos + 1);
          return false;
        }
      } else {
        const std::size_t start = pos;
        while (pos < s.size() && s[pos] != ',') ++pos;
        std::size_t end = pos;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
        fields_.push_back(s.substr(start, end - start));
      }
      if (pos >= s.size()) return true;
      ++pos;  // the comma
    }
  }

  line_reader lines_;
  std::size_t max_line_;
  bool have_header_ = false;
  std::vector<int> columns_;              // column -> pkdk field
  std::vector<std::string_view> fields_;  // fields of the current line
  std::deque<std::string> scratch_;       // unquoted text of quoted fields (stable addresses)
  std::uint64_t index_ = 0;
};

// ---------------------------------------------------------------- NDJSON

class ndjson_reader final : public device_reader {
 public:
  ndjson_reader(std::istream& in, const device_reader_config& config)
      : lines_(in, config.max_line_bytes, json_padding), max_line_(config.max_line_bytes) {}

  bool next(device_record& out) override {
    line_reader::line line;
    do {
      if (!lines_.next(line)) {
        if (lines_.failed()) fatal_ = fmt::format("read error after line {}", line.number);
        if (lines_.binary()) fatal_ = not_text(lines_.nul_offset());
        return false;
      }
    } while (!line.too_long && is_blank(line.text));
    out.index = index_++;
    out.line = line.number;
    out.problem.clear();
    if (line.too_long) {
      out.device = {};
      out.problem = fmt::format("line {}: longer than {} bytes", line.number, max_line_);
      return true;
    }
    std::string problem;
    if (!parser_.parse(line.text.data(), line.text.size(), line.readable, out.device, problem)) {
      out.problem = fmt::format("line {}: {}", line.number, problem);
    }
    return true;
  }

 private:
  line_reader lines_;
  std::size_t max_line_;
  device_object_parser parser_;
  std::uint64_t index_ = 0;
};

// ---------------------------------------------------------------- JSON array

// Finds the elements of a top-level array with a small scanner (strings,
// escapes, nesting) over fixed-size chunks, and parses each element alone:
// a file of any size is read in constant memory.
class json_array_reader final : public device_reader {
 public:
  json_array_reader(std::istream& in, const device_reader_config& config, bool inline_array)
      : in_(in), max_element_(config.max_line_bytes), inline_(inline_array) {
    chunk_.resize(256 * 1024);
  }

  bool next(device_record& out) override {
    if (!find_element()) return false;
    out.index = index_++;
    out.line = inline_ ? 0 : element_line_;
    out.problem.clear();
    out.device = {};
    const auto where = [&] {
      return inline_ ? fmt::format("devices[{}]", out.index)
                     : fmt::format("line {}", element_line_);
    };
    if (element_too_long_) {
      out.problem = fmt::format("{}: element longer than {} bytes", where(), max_element_);
      return true;
    }
    if (element_.empty()) {
      out.problem = fmt::format("{}: empty element (a stray comma?)", where());
      return true;
    }
    const std::size_t size = element_.size();
    element_.append(json_padding, ' ');
    std::string problem;
    if (!parser_.parse(element_.data(), size, element_.size(), out.device, problem)) {
      out.problem = fmt::format("{}: {}", where(), problem);
    }
    return true;
  }

 private:
  enum class state { before_array, before_element, in_element, after_array, done };

  bool get(char& c) {
    if (pos_ == end_) {
      if (eof_) return false;
      in_.read(chunk_.data(), static_cast<std::streamsize>(chunk_.size()));
      end_ = static_cast<std::size_t>(in_.gcount());
      pos_ = 0;
      if (!in_) {
        eof_ = true;
        if (in_.bad()) fatal_ = fmt::format("read error at line {}", line_);
      }
      if (const void* nul = std::memchr(chunk_.data(), '\0', end_)) {
        fatal_ = not_text(read_ +
                          static_cast<std::size_t>(static_cast<const char*>(nul) - chunk_.data()));
        eof_ = true;
        end_ = 0;
        return false;
      }
      read_ += end_;
      if (end_ == 0) return false;
    }
    c = chunk_[pos_++];
    if (c == '\n') ++line_;
    return true;
  }

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  void keep(char c) {
    if (element_.size() < max_element_) {
      element_ += c;
    } else {
      element_too_long_ = true;
    }
  }

  // Leaves the next element's text in element_; false at the end of the array.
  bool find_element() {
    char c;
    element_.clear();
    element_too_long_ = false;
    while (state_ == state::before_array) {
      if (!get(c)) {
        if (fatal_.empty()) fatal_ = "the file is empty (expected a JSON array)";
        return false;
      }
      if (line_ == 1 && !bom_checked_) {
        bom_checked_ = true;
        if (c == '\xEF') {  // UTF-8 byte order mark
          char b, o;
          if (get(b) && get(o) && b == '\xBB' && o == '\xBF') continue;
          fatal_ = "line 1: expected '[' (a JSON array of device objects)";
          return false;
        }
      }
      if (is_space(c)) continue;
      if (c != '[') {
        fatal_ = fmt::format("line {}: expected '[' (a JSON array of device objects)", line_);
        return false;
      }
      state_ = state::before_element;
      first_ = true;
    }
    if (state_ == state::after_array || state_ == state::done) return finish();

    // Skip white space before the element; an empty array ends here.
    for (;;) {
      if (!get(c)) return unterminated();
      if (is_space(c)) continue;
      if (c == ']' && first_) {
        state_ = state::after_array;
        return finish();
      }
      break;
    }
    first_ = false;
    element_line_ = line_;
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (;;) {
      if (in_string) {
        keep(c);
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (depth == 0 && (c == ',' || c == ']')) {
        while (!element_.empty() && is_space(element_.back())) element_.pop_back();
        if (c == ']') state_ = state::after_array;
        return true;
      } else {
        if (c == '"') {
          in_string = true;
        } else if (c == '{' || c == '[') {
          ++depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
          --depth;
        }
        keep(c);
      }
      if (!get(c)) return unterminated();
    }
  }

  // After the closing ']': only white space may follow.
  bool finish() {
    char c;
    if (state_ == state::after_array) {
      while (get(c)) {
        if (!is_space(c)) {
          fatal_ = fmt::format("line {}: content after the end of the array", line_);
          break;
        }
      }
      state_ = state::done;
    }
    return false;
  }

  bool unterminated() {
    if (fatal_.empty()) {
      fatal_ = fmt::format("line {}: the file ends inside the array (missing ']')", line_);
    }
    state_ = state::done;
    return false;
  }

  std::istream& in_;
  std::size_t max_element_;
  bool inline_;
  std::string chunk_;
  std::size_t pos_ = 0;
  std::uint64_t read_ = 0;  // bytes read before chunk_
  std::size_t end_ = 0;
  bool eof_ = false;
  std::uint64_t line_ = 1;
  bool bom_checked_ = false;
  state state_ = state::before_array;
  bool first_ = true;
  std::string element_;
  bool element_too_long_ = false;
  std::uint64_t element_line_ = 0;
  device_object_parser parser_;
  std::uint64_t index_ = 0;
};

}  // namespace

std::unique_ptr<device_reader> make_device_reader(device_format format, std::istream& in,
                                                  const device_reader_config& config,
                                                  bool inline_array) {
  switch (format) {
    case device_format::csv:
      return std::make_unique<csv_reader>(in, config);
    case device_format::ndjson:
      return std::make_unique<ndjson_reader>(in, config);
    case device_format::json_array:
      return std::make_unique<json_array_reader>(in, config, inline_array);
  }
  return nullptr;
}

namespace {
// A reader that owns the stream it reads.
class owning_reader final : public device_reader {
 public:
  owning_reader(std::unique_ptr<std::istream> in, device_format f,
                const device_reader_config& config, bool inline_array)
      : in_(std::move(in)), reader_(make_device_reader(f, *in_, config, inline_array)) {}
  bool next(device_record& out) override {
    const bool more = reader_->next(out);
    if (!more) fatal_ = reader_->fatal_error();
    return more;
  }

 private:
  std::unique_ptr<std::istream> in_;
  std::unique_ptr<device_reader> reader_;
};
}  // namespace

std::unique_ptr<device_reader> make_device_reader(device_format format,
                                                  std::unique_ptr<std::istream> in,
                                                  const device_reader_config& config,
                                                  bool inline_array) {
  return std::make_unique<owning_reader>(std::move(in), format, config, inline_array);
}

std::unique_ptr<device_reader> make_text_device_reader(device_format format, std::string text,
                                                       const device_reader_config& config,
                                                       bool inline_array) {
  return make_device_reader(format, std::make_unique<std::istringstream>(std::move(text)), config,
                            inline_array);
}

}  // namespace fleetcast
