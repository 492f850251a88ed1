// pkdk_result_merger: merges the partial answers of a rollout into one
// PkdkResult in the API's own response schema (result.json), streaming:
// success entries collect in one buffer, failure entries in another; the
// caller drains both as they grow (the successes straight into the result
// file after head(), the failures into a file of their own) and at the end
// writes between(), the failures, and tail(). Memory does not grow with the
// fleet, and the answer is built as the results come, not read back.
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
#include <string>
#include <string_view>

namespace fleetcast {

class pkdk_result_merger {
 public:
  // Adds one device's final result.
  void add(const device_result& r);
  // Adds the lists of one decoded answer as they are.
  void add(const decoded_response& part);

  // The entries added since the caller last took them (comma-separated
  // across takes: a buffer taken and cleared continues the list).
  std::string& successes() noexcept { return successes_; }
  std::string& failures() noexcept { return failures_; }

  std::uint64_t success_count() const noexcept { return success_count_; }
  std::uint64_t failure_count() const noexcept { return failure_count_; }

  // {"code":200,"msg":msg,"extMsg":null,"data":{"successList":[
  static std::string head(std::string_view msg);
  // ],"failureList":[
  static constexpr std::string_view between() noexcept { return "],\"failureList\":["; }
  // ]}} and a newline
  static constexpr std::string_view tail() noexcept { return "]}}\n"; }

  // The whole answer when everything was kept in memory (tests, small runs).
  std::string whole(std::string_view msg) const;

 private:
  void add_success(const pkdk_view& d, std::string_view ticket);
  void add_failure(const pkdk_view& d, std::string_view msg);
  std::string successes_, failures_;
  std::uint64_t success_count_ = 0;
  std::uint64_t failure_count_ = 0;
};

}  // namespace fleetcast
