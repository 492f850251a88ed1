// libFuzzer target: a device list exported from another system, read as CSV,
// NDJSON and a JSON array (the first byte picks the format) through the
// record checks. Every record comes out once, with consecutive indices.
#include <fleetcast/core/input/device_stream.hpp>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto format = static_cast<fleetcast::device_format>(data[0] % 3);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  fleetcast::device_reader_config config;
  config.max_line_bytes = 256;  // small, so that long lines are reached
  fleetcast::device_stream stream(fleetcast::make_device_reader(format, in, config, data[0] & 4));
  fleetcast::device_record record;
  fleetcast::record_kind kind;
  std::uint64_t expected = 0;
  while (stream.next(record, kind)) {
    if (record.index != expected++) std::abort();
    if (kind != fleetcast::record_kind::device) (void)fleetcast::skip_result(record, kind);
    if (expected > size + 1) std::abort();  // more records than bytes: a loop
  }
  return 0;
}
