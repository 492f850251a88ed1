// retry_policy: when a batch may be tried again, and after how long.
// Exponential backoff with full jitter (delay uniform in [0, min(max,
// base * 2^(n-1))]), at most max_attempts tries, a server's Retry-After
// honoured, and a retry budget: retries may be at most `budget_ratio` of all
// requests sent (plus a floor of 10), as gRPC's retry throttling and Envoy's
// retry budgets do, so that a sick server is not hammered.
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <cstdint>

namespace fleetcast {

class retry_policy {
 public:
  explicit retry_policy(const retry_config& config, double budget_ratio = 0.2) noexcept
      : config_(config), budget_ratio_(budget_ratio) {}

  // The delay before try number `next_try` (2 = the first retry); `unit` is
  // a uniform random number in [0, 1); `retry_after_ms` the server's wish.
  std::uint32_t delay_ms(std::uint32_t next_try, double unit,
                         std::uint32_t retry_after_ms = 0) const noexcept;

  // Whether a batch that has made `tries` tries may retry now: within
  // max_attempts and within the budget. Counts the retry when it may.
  bool allow_retry(std::uint32_t tries) noexcept;
  void count_request() noexcept { ++requests_; }

  std::uint64_t requests() const noexcept { return requests_; }
  std::uint64_t retries() const noexcept { return retries_; }
  bool budget_exhausted() const noexcept;
  // Whether a batch after `tries` is refused by the budget alone.
  bool refused_by_budget(std::uint32_t tries) const noexcept {
    return tries < config_.max_attempts && budget_exhausted();
  }

 private:
  retry_config config_;
  double budget_ratio_;
  std::uint64_t requests_ = 0;
  std::uint64_t retries_ = 0;
};

}  // namespace fleetcast
