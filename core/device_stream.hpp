// device_stream: a device reader plus the checks every record passes before
// it may be sent: device validation (validate_device) and duplicates
// (productKey+deviceKey seen before in the input). Each record comes out
// exactly once, as a device to send or as a skip with its reason.
#pragma once

#include "core/device_reader.hpp"
#include "core/device_result.hpp"
#include "core/fingerprint_set.hpp"
#include "core/shard.hpp"

#include <memory>

namespace fleetcast {

enum class record_kind { device, invalid, duplicate };

class device_stream {
 public:
  explicit device_stream(std::unique_ptr<device_reader> reader) : reader_(std::move(reader)) {}

  // The next record and what it is; for invalid and duplicate records,
  // record.problem says why (with its location). False at the end of the
  // input or on a fatal error (fatal_error()).
  bool next(device_record& record, record_kind& kind);
  const std::string& fatal_error() const noexcept { return reader_->fatal_error(); }

  // Keeps only the records of one shard (shard.hpp); the others are read
  // and passed over, not reported. Before the first next().
  void set_shard(shard_spec s) noexcept { shard_ = s; }

  // Bytes held by the duplicate filter (for memory reports).
  std::size_t memory_bytes() const noexcept { return seen_.memory_bytes(); }

 private:
  std::unique_ptr<device_reader> reader_;
  fingerprint_set seen_;
  shard_spec shard_;
};

// The skip result of an invalid or duplicate record.
device_result skip_result(const device_record& record, record_kind kind);

}  // namespace fleetcast
