// device_stream: a device reader plus the checks every record passes before
// it may be sent: device validation (validate_device) and duplicates
// (productKey+deviceKey seen before in the input). Each record comes out
// exactly once, as a device to send or as a skip with its reason.
#pragma once

#include <fleetcast/core/input/device_reader.hpp>
#include <fleetcast/core/input/fingerprint_set.hpp>
#include <fleetcast/core/input/shard.hpp>
#include <fleetcast/core/output/device_result.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>

namespace fleetcast {

enum class record_kind { device, invalid, duplicate };

class device_stream {
 public:
  explicit device_stream(std::unique_ptr<device_reader> reader) : reader_(std::move(reader)) {}
  device_stream(const device_stream&) = delete;
  device_stream& operator=(const device_stream&) = delete;

  // The next record and what it is; for invalid and duplicate records,
  // record.problem says why (with its location). False at the end of the
  // input or on a fatal error (fatal_error()). The record's keys stay valid
  // until the next call. In large inputs, records are read a few ahead (in
  // order) so that the duplicate filter's memory is fetched before it is
  // needed.
  bool next(device_record& record, record_kind& kind);
  const std::string& fatal_error() const noexcept { return reader_->fatal_error(); }

  // Keeps only the records of one shard (shard.hpp); the others are read
  // and passed over, not reported. Before the first next().
  void set_shard(shard_spec s) noexcept { shard_ = s; }

  // Keeps only the devices `keep` says yes to (a rollout's phase:
  // phase_plan.hpp), passing the others over like another shard's; records
  // that are not devices come out only when `invalid_too`. Every duplicate
  // of a device has its hash, so it is in the same pass as the device.
  using device_filter = std::function<bool(const pkdk_view&, std::uint64_t fingerprint)>;
  void set_filter(device_filter keep, bool invalid_too) {
    keep_ = std::move(keep);
    invalid_too_ = invalid_too;
  }
  // Reads the input again from its start through `reader` (the next pass
  // of a phased rollout): the duplicate filter starts empty.
  void restart(std::unique_ptr<device_reader> reader);

  // About how many records the input holds (exact or estimated), so that the
  // duplicate filter is sized once instead of growing step by step; this
  // shard's part of them is reserved. A hint: any number of records still
  // works. Before the first next().
  void expect_records(std::uint64_t n) noexcept { expected_ = n; }
  std::uint64_t expected_records() const noexcept { return expected_; }

  // Bytes held by the duplicate filter (for memory reports).
  std::size_t memory_bytes() const noexcept { return seen_.memory_bytes(); }

 private:
  // A record read ahead, with its own copy of its keys.
  struct staged {
    device_record record;  // device views into `keys`
    std::string keys;
    record_kind kind = record_kind::device;
  };
  static constexpr std::size_t ahead = 8;
  // The filter's size from which records are read ahead: beyond the caches
  // of a core.
  static constexpr std::size_t read_ahead_bytes = 2 << 20;
  // The next record of this shard, validated and hashed (not yet checked
  // for duplicates); false at the end.
  bool read_checked(device_record& r, record_kind& kind);
  void check_duplicate(device_record& record, record_kind& kind);
  bool stage(staged& s);  // read_checked into the ring, keys copied, slot prefetched
  bool read_ahead_ = false;
  std::uint64_t expected_ = 0;

  std::unique_ptr<device_reader> reader_;
  fingerprint_set seen_;
  shard_spec shard_;
  device_filter keep_;
  bool invalid_too_ = true;
  std::array<staged, ahead> ring_;
  std::size_t head_ = 0, count_ = 0;
  bool input_end_ = false;
  device_record scratch_;
};

// About how many records an input of `total_bytes` holds, from its first
// bytes (`sample`): lines for CSV and NDJSON, objects for a JSON array.
// 0 when the sample is too small to tell (fewer than 16 records).
std::uint64_t estimate_records(std::string_view sample, std::uint64_t total_bytes,
                               device_format format) noexcept;

// The skip result of an invalid or duplicate record.
device_result skip_result(const device_record& record, record_kind kind);

}  // namespace fleetcast
