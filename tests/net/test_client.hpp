// A small synchronous HTTP/1.1 client for integration tests: plain or TLS
// (verifying the peer against a given CA and host name), whole requests or
// raw bytes (for pipelining and malformed input), one answer at a time.
#pragma once

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast::test {

struct http_answer {
  boost::system::error_code error;  // set when no whole answer could be read
  int status = 0;
  std::string body;
  std::string connection;  // the Connection header
  std::string retry_after;
  std::string content_type;
  std::string allow;
};

class test_client {
 public:
  // Connects to host:port; TLS when `ca_pem` is not empty, verifying the
  // certificate and `host_name`. Check connect_error() before use.
  test_client(const std::string& host, std::uint16_t port, const std::string& ca_pem = "",
              const std::string& host_name = "localhost");
  ~test_client();

  const boost::system::error_code& connect_error() const noexcept;
  // receive() fails with timed_out when no whole answer came within `ms`
  // (0 = wait as long as it takes).
  void set_receive_timeout_ms(int ms);

  http_answer post(std::string_view target, std::string_view body,
                   std::optional<std::string_view> token = "Bearer test");
  http_answer get(std::string_view target);
  // Raw bytes out, and the next answer in.
  boost::system::error_code send(std::string_view bytes);
  http_answer receive();

  // The text of a request, for send().
  static std::string request_text(std::string_view method, std::string_view target,
                                  std::string_view body,
                                  std::optional<std::string_view> token = "Bearer test");

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::test
