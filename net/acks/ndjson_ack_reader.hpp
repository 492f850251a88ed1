// ndjson_ack_reader: subscription messages from a file that grows, or a
// FIFO, one JSON object a line (for operators who already consume the
// subscription with the vendor's SDK and write what it receives). Reads
// what is there, then looks again every 50 ms; a writer that closes a FIFO
// may open it again. Each complete line goes to the handler on the
// executor's thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fleetcast::net {

using subscription_handler = std::function<void(std::string_view body)>;

class ndjson_ack_reader {
 public:
  ndjson_ack_reader(boost::asio::any_io_executor ex, std::string path,
                    subscription_handler on_message);
  ~ndjson_ack_reader();
  ndjson_ack_reader(const ndjson_ack_reader&) = delete;
  ndjson_ack_reader& operator=(const ndjson_ack_reader&) = delete;

  // Opens the file (a missing one is waited for) and starts reading.
  void start();
  void stop();
  // Reads what is there now (without waiting for the next look).
  void poll();
  std::uint64_t lines() const noexcept;
  // Why it cannot read (empty while it can).
  const std::string& error() const noexcept;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace fleetcast::net
