// Buffered line splitting (see line_reader.hpp).
#include "core/input/line_reader.hpp"

#include <cstring>

namespace fleetcast {

line_reader::line_reader(std::istream& in, std::size_t max_line, std::size_t padding)
    : in_(in), max_line_(max_line), padding_(padding) {
  // Room for a whole line of max_line plus a read chunk, plus the padding.
  buf_.resize(std::max<std::size_t>(max_line, 256 * 1024) + max_line + padding);
}

bool line_reader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    consumed_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t room = buf_.size() - padding_ - end_;
  if (room == 0) return false;
  in_.read(buf_.data() + end_, static_cast<std::streamsize>(room));
  const auto got = static_cast<std::size_t>(in_.gcount());
  if (const void* nul = std::memchr(buf_.data() + end_, '\0', got)) {
    binary_ = eof_ = true;
    nul_offset_ = consumed_ + static_cast<std::size_t>(static_cast<const char*>(nul) - buf_.data());
    end_ = begin_ = 0;
    return false;
  }
  end_ += got;
  if (!in_) {
    eof_ = true;
    failed_ = in_.bad();
  }
  return got > 0;
}

bool line_reader::next(line& out) {
  for (;;) {
    if (binary_) return false;
    const char* start = buf_.data() + begin_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    std::size_t len = nl ? static_cast<std::size_t>(nl - start) : end_ - begin_;
    if (!nl && len <= max_line_ && fill()) continue;  // need more to finish this line
    if (binary_) return false;

    if (len > max_line_) {
      // Skip to the end of this line without keeping it.
      for (;;) {
        const char* s = buf_.data() + begin_;
        const auto* p = static_cast<const char*>(std::memchr(s, '\n', end_ - begin_));
        if (p) {
          begin_ += static_cast<std::size_t>(p - s) + 1;
          break;
        }
        begin_ = end_;
        if (!fill()) break;
      }
      if (binary_) return false;
      out = {{}, ++number_, true, 0, true};
      return true;
    }
    if (!nl && len == 0) return false;  // end of stream

    std::size_t text_len = len;
    if (text_len > 0 && start[text_len - 1] == '\r') --text_len;
    out.text = {start, text_len};
    out.number = ++number_;
    out.too_long = false;
    out.readable = buf_.size() - begin_;
    out.terminated = nl != nullptr;
    begin_ += len + (nl ? 1 : 0);
    return true;
  }
}

}  // namespace fleetcast
