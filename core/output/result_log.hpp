// result_log: reading results.ndjson back, for --resume (which devices
// already have a result) and for result.json (the merged PkdkResult). A
// last line cut short by a crash is not a result: reading stops before it,
// and complete_bytes() says where the file should be cut.
#pragma once

#include <fleetcast/core/output/device_result.hpp>
#include "core/input/line_reader.hpp"

#include <cstdint>
#include <istream>
#include <memory>
#include <string>

namespace fleetcast {

class result_log_reader {
 public:
  explicit result_log_reader(std::istream& in);
  ~result_log_reader();

  // The next complete result (views valid until the next call); false at the
  // end, at a cut-short last line, or at a line that is not a result
  // (error() then says which).
  bool next(device_result& out);
  std::uint64_t complete_bytes() const noexcept { return complete_bytes_; }
  const std::string& error() const noexcept { return error_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  line_reader lines_;
  std::uint64_t complete_bytes_ = 0;
  std::string error_;
};

// result.json's text rebuilt from a results.ndjson stream, in memory (the
// run builds it as it goes; this is the reference its tests compare with).
// Returns an error message, or "" on success.
std::string merged_result_of(std::istream& results, std::string& out);

}  // namespace fleetcast
