// result_file: result.json built as the run goes. Every final result goes
// in as it is written to results.ndjson (and, on --resume, every kept
// result as the folder is compacted), so nothing is read back at the end:
// the successList goes straight into result.json.tmp after its head, the
// failureList into .failures.part beside it, and finish() appends the
// failures, syncs and renames. Writeback of the big file starts while the
// run goes on (sync_file_range every 64 MiB), so the final sync has little
// left. A failed write is remembered and reported by finish(), never thrown.
#pragma once

#include <fleetcast/core/output/device_result.hpp>
#include "core/protocol/pkdk_result_merger.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace fleetcast::net {

class result_file {
 public:
  // Opens DIR/result.json.tmp and DIR/.failures.part (both emptied).
  explicit result_file(const std::filesystem::path& dir);
  ~result_file();  // removes the temporary files unless finish() renamed them
  result_file(const result_file&) = delete;
  result_file& operator=(const result_file&) = delete;

  void add(const device_result& r) {
    merger_.add(r);
    if (merger_.successes().size() >= drain_bytes || merger_.failures().size() >= drain_bytes)
      drain();
  }

  // Completes DIR/result.json; returns what went wrong ("" when fine).
  std::string finish();
  // The first write that failed so far ("" when none).
  const std::string& error() const noexcept { return error_; }

 private:
  static constexpr std::size_t drain_bytes = 1 << 20;
  void drain();
  bool write_all(int fd, std::string_view data, const char* what);
  std::filesystem::path dir_;
  pkdk_result_merger merger_;
  int out_ = -1, failures_ = -1;
  std::uint64_t written_ = 0, synced_ = 0;  // bytes of result.json.tmp
  std::string error_;
  bool done_ = false;
};

}  // namespace fleetcast::net
