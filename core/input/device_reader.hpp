// device_reader: streams the records of a device list (CSV with a header row,
// NDJSON, a JSON array, or the job's inline array) one at a time, through
// fixed buffers: memory does not grow with the list. A record that cannot be
// read as a device keeps its place (index) and says why (problem); reading
// goes on. Only an unusable input (no header, not an array, a read error)
// stops it, with fatal_error() set.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast {

enum class device_format { csv, ndjson, json_array };

// The format named by a file's extension (.csv, .ndjson, .jsonl, .json).
std::optional<device_format> format_from_path(std::string_view path) noexcept;
std::string_view to_string(device_format f) noexcept;

struct device_record {
  std::uint64_t index = 0;        // 0-based position among the input's records
  std::uint64_t line = 0;         // 1-based line where the record starts; 0 in an inline array
  pkdk_view device;               // valid until the next call to next()
  std::string problem;            // empty for a readable record; else what is wrong and where
  std::uint64_t fingerprint = 0;  // device_hash, set by device_stream for a device
};

class device_reader {
 public:
  virtual ~device_reader() = default;
  // The next record; false at the end of the input or when a fatal error
  // stopped reading (then fatal_error() is not empty).
  virtual bool next(device_record& out) = 0;
  const std::string& fatal_error() const noexcept { return fatal_; }

 protected:
  std::string fatal_;
};

struct device_reader_config {
  std::size_t max_line_bytes = 64 * 1024;  // longer lines (or array elements) are bad records
};

// A reader over `in` (which must outlive it). For an inline array from a job
// file, `inline_array` makes locations read "devices[i]" instead of lines.
std::unique_ptr<device_reader> make_device_reader(device_format format, std::istream& in,
                                                  const device_reader_config& config = {},
                                                  bool inline_array = false);
// The same over a stream it owns (a file opened for one pass of the list).
std::unique_ptr<device_reader> make_device_reader(device_format format,
                                                  std::unique_ptr<std::istream> in,
                                                  const device_reader_config& config = {},
                                                  bool inline_array = false);
// A reader over its own copy of `text`: a list held in memory, read again
// from its start by each reader made (the passes of a phased rollout).
std::unique_ptr<device_reader> make_text_device_reader(device_format format, std::string text,
                                                       const device_reader_config& config = {},
                                                       bool inline_array = false);

}  // namespace fleetcast
