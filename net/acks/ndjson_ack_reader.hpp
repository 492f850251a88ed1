// ndjson_ack_reader: subscription messages from a file that grows, or a
// FIFO, one JSON object a line (for operators who already consume the
// subscription with the vendor's SDK and write what it receives).
//
// - Reads at most a slice (256 KiB) per turn of the executor, then yields:
//   a large file or one huge line never holds the loop. Lines are split in
//   bounded memory and linear time (core/input/line_splitter); a line over
//   1 MiB is refused with its size, never kept.
// - Follows the path as `tail -F` does: a file cut shorter (truncated) is
//   read again from its start; a file replaced at the path (a rotation, a
//   rename over it) is read to its end, then the new one from its start.
//   Each such event is told (on_notice).
// - A FIFO: a writer that closes it with its last line unfinished has that
//   line dropped (and told), never joined to the next writer's first.
// Each complete line goes to the handler on the executor's thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fleetcast::net {

using subscription_handler = std::function<void(std::string_view body)>;
// What the reader tells besides messages: a file truncated or replaced, a
// line dropped or refused (one sentence, naming the path).
using source_notice = std::function<void(const std::string& text)>;

class ndjson_ack_reader {
 public:
  static constexpr std::size_t max_line = 1 << 20;
  static constexpr std::size_t slice = 256 * 1024;

  ndjson_ack_reader(boost::asio::any_io_executor ex, std::string path,
                    subscription_handler on_message, source_notice on_notice = nullptr);
  ~ndjson_ack_reader();
  ndjson_ack_reader(const ndjson_ack_reader&) = delete;
  ndjson_ack_reader& operator=(const ndjson_ack_reader&) = delete;

  // Opens the path and starts reading. False with `error` naming the path
  // when it cannot be opened (missing: a typo is said at once).
  bool start(std::string& error);
  void stop();
  // Reads one slice of what is there now (without waiting for the next look).
  void poll();
  std::uint64_t lines() const noexcept;
  std::uint64_t refused() const noexcept;  // lines dropped: too long, or unfinished
  // Why it cannot read (empty while it can).
  const std::string& error() const noexcept;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace fleetcast::net
