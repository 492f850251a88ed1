// device_object_parser: one device object ({"productKey":..,"deviceKey":..,
// "gatewayProductKey":..,"gatewayDeviceKey":..}) from an NDJSON line or a JSON
// array element, with simdjson On-Demand and a reused parser.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace fleetcast {

// Readable bytes a caller keeps after the text it passes to parse().
inline constexpr std::size_t json_padding = 64;

class device_object_parser {
 public:
  device_object_parser();
  ~device_object_parser();

  // Parses the object in [data, data + size); `readable` bytes from data are
  // readable (at least size + simdjson's padding). On success `out` views
  // stay valid until the next parse. On failure returns false and sets
  // `problem` (without a location: the caller adds it).
  bool parse(const char* data, std::size_t size, std::size_t readable, pkdk_view& out,
             std::string& problem);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast
