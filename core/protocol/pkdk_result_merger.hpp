// pkdk_result_merger: merges the partial answers of a rollout into one
// PkdkResult in the API's own response schema (result.json), streaming:
// success entries go to one stream, failure entries to another, and write()
// joins them. Memory does not grow with the fleet.
//
// successList gets every succeeded device with its ticket; failureList every
// failed device, and every device skipped by the rollout (aborted, cancelled,
// job failed) with a "skipped: ..." message. Input records that are not
// devices (invalid, duplicates) are only in results.ndjson: a duplicate in
// result.json would name one device twice.
#pragma once

#include <fleetcast/core/output/device_result.hpp>
#include "core/protocol/response_decoder.hpp"

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>

namespace fleetcast {

class pkdk_result_merger {
 public:
  pkdk_result_merger(std::ostream& successes, std::ostream& failures)
      : successes_(successes), failures_(failures) {}

  // Adds one device's final result.
  void add(const device_result& r);
  // Adds the lists of one decoded answer as they are.
  void add(const decoded_response& part);

  std::uint64_t success_count() const noexcept { return success_count_; }
  std::uint64_t failure_count() const noexcept { return failure_count_; }

  // Writes {"code":200,"msg":msg,"extMsg":null,"data":{"successList":[..],
  // "failureList":[..]}} from the two streams the merger filled.
  static void write(std::ostream& out, std::istream& successes, std::istream& failures,
                    std::string_view msg);

 private:
  void add_success(const pkdk_view& d, std::string_view ticket);
  void add_failure(const pkdk_view& d, std::string_view msg);
  std::ostream& successes_;
  std::ostream& failures_;
  std::string buf_;
  std::uint64_t success_count_ = 0;
  std::uint64_t failure_count_ = 0;
};

}  // namespace fleetcast
