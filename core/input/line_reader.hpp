// line_reader: splits a stream into lines through one fixed buffer, so that
// memory does not grow with the file. A line longer than the limit is
// reported (too_long) and skipped, never buffered whole.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>

namespace fleetcast {

class line_reader {
 public:
  struct line {
    std::string_view text;     // without the '\n' (and a '\r' before it)
    std::uint64_t number = 0;  // 1-based
    bool too_long = false;     // text is empty then
    std::size_t readable = 0;  // bytes readable from text.data() (>= text.size() + padding)
    bool terminated = true;    // ended by '\n' (false: the stream ended mid-line)
  };

  // `padding` extra readable bytes are kept after every line, so that a
  // parser that reads past the end (simdjson) can parse it in place.
  explicit line_reader(std::istream& in, std::size_t max_line = 64 * 1024,
                       std::size_t padding = 64);

  // The next line; false at the end of the stream or on a read error.
  bool next(line& out);
  // A read error (not the end of the stream) stopped reading.
  bool failed() const noexcept { return failed_; }
  // A NUL byte stopped reading: not a text file (a sparse or binary file,
  // /dev/zero). Its offset in the stream; reading ends at once, without
  // scanning the rest for the end of a line.
  bool binary() const noexcept { return binary_; }
  std::uint64_t nul_offset() const noexcept { return nul_offset_; }

 private:
  bool fill();  // reads more into the buffer; false when nothing more can come

  std::istream& in_;
  std::size_t max_line_;
  std::size_t padding_;
  std::string buf_;
  std::size_t begin_ = 0;  // start of unconsumed data
  std::size_t end_ = 0;    // end of valid data
  std::uint64_t number_ = 0;
  bool eof_ = false;
  bool failed_ = false;
  bool binary_ = false;
  std::uint64_t consumed_ = 0;  // bytes read from the stream before buf_'s data
  std::uint64_t nul_offset_ = 0;
};

}  // namespace fleetcast
