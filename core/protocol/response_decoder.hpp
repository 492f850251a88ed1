// response_decoder: reads a batchControlDevice answer with simdjson On-Demand
// into code, msg, extMsg and the success and failure lists. One decoder (one
// parser, reused vectors) per connection: decoding allocates nothing per
// device once warm. The decoded strings are views that stay valid until the
// next decode() on the same decoder.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace fleetcast {

enum class decode_errc : int {
  not_json = 1,          // not JSON, truncated, or invalid UTF-8
  not_an_object = 2,     // valid JSON, but not an object
  missing_code = 3,      // no "code" field
  wrong_type = 4,        // a known field of the wrong type (see error_field())
  too_large = 5,         // body over the decoder's limit
  trailing_content = 6,  // something after the JSON document
};

const boost::system::error_category& decode_category() noexcept;

inline boost::system::error_code make_error_code(decode_errc e) noexcept {
  return {static_cast<int>(e), decode_category()};
}

struct decoded_success {
  pkdk_view device;
  std::string_view ticket;
};

struct decoded_failure {
  pkdk_view device;
  std::string_view msg;
};

struct decoded_response {
  std::int64_t code = 0;
  std::string_view msg;
  std::optional<std::string_view> ext_msg;  // nullopt when missing or null
  std::vector<decoded_success> successes;
  std::vector<decoded_failure> failures;
  // List entries with no device ("data" missing or null): they cannot be
  // attributed to any device, so they are only counted.
  std::size_t entries_without_device = 0;

  bool ok() const noexcept { return code == 200; }
};

class response_decoder {
 public:
  // Extra readable bytes simdjson needs after a body to parse it in place.
  static const std::size_t padding;
  static constexpr std::size_t default_max_body = 64 * 1024 * 1024;

  explicit response_decoder(std::size_t max_body = default_max_body);
  ~response_decoder();
  response_decoder(response_decoder&&) noexcept;
  response_decoder& operator=(response_decoder&&) noexcept;

  // Decodes `body`. When `readable` (bytes readable from body.data()) is at
  // least body.size() + padding, the body is parsed in place; otherwise it is
  // copied into a reused internal buffer. Returns a decode_errc on failure;
  // response() is then partial and error_field() says where it failed.
  boost::system::error_code decode(std::string_view body, std::size_t readable);
  boost::system::error_code decode(std::string_view body) { return decode(body, body.size()); }

  const decoded_response& response() const noexcept { return response_; }
  // JSON path of the last error, e.g. "data.successList[3].ticket"; may be empty.
  const std::string& error_field() const noexcept { return error_field_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  decoded_response response_;
  std::string error_field_;
  std::string padded_;
  std::size_t max_body_;
};

}  // namespace fleetcast

template <>
struct boost::system::is_error_code_enum<fleetcast::decode_errc> : std::true_type {};
