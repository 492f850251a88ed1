// line_splitter: lines out of bytes pushed in as they arrive (a file that
// grows, a FIFO), in bounded memory and linear time: only an unfinished line
// is kept, each byte is looked at once, and a line longer than the limit is
// not kept at all (its length is reported once its end comes). Sans-io: the
// caller reads, the splitter only splits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace fleetcast {

class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line = 1 << 20) : max_line_(max_line) {}

  // Splits `bytes`: on_line(std::string_view) for each complete line that
  // is not empty (without "\n" or "\r\n"), on_too_long(std::uint64_t size)
  // for each line over the limit, both in input order.
  template <typename OnLine, typename OnTooLong>
  void feed(std::string_view bytes, OnLine&& on_line, OnTooLong&& on_too_long) {
    while (!bytes.empty()) {
      const auto* nl = static_cast<const char*>(std::memchr(bytes.data(), '\n', bytes.size()));
      const std::size_t len = nl ? static_cast<std::size_t>(nl - bytes.data()) : bytes.size();
      if (skipping_ || partial_.size() + len > max_line_) {
        if (!skipping_) {
          skipped_ = partial_.size();
          partial_.clear();
          skipping_ = true;
        }
        skipped_ += len;
        if (nl) {
          skipping_ = false;
          on_too_long(std::exchange(skipped_, 0));
        }
      } else if (!nl) {
        partial_.append(bytes.data(), len);
      } else if (partial_.empty()) {
        emit(bytes.substr(0, len), on_line);
      } else {
        partial_.append(bytes.data(), len);
        emit(partial_, on_line);
        partial_.clear();
      }
      if (!nl) return;
      bytes.remove_prefix(len + 1);
    }
  }

  // The writer is gone (a FIFO's end) or the file was replaced or cut: an
  // unfinished line is never joined to what comes next. Returns how many
  // bytes were dropped (0 when the last line was complete).
  std::uint64_t drop_partial() noexcept {
    const std::uint64_t n = skipping_ ? skipped_ : partial_.size();
    partial_.clear();
    skipping_ = false;
    skipped_ = 0;
    return n;
  }
  std::size_t pending() const noexcept { return skipping_ ? skipped_ : partial_.size(); }
  std::size_t max_line() const noexcept { return max_line_; }

 private:
  template <typename OnLine>
  static void emit(std::string_view line, OnLine& on_line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) on_line(line);
  }

  std::size_t max_line_;
  std::string partial_;
  bool skipping_ = false;
  std::uint64_t skipped_ = 0;
};

}  // namespace fleetcast
