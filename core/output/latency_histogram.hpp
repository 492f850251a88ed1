// latency_histogram: request latencies in log-linear buckets (as
// HdrHistogram does: 32 linear sub-buckets per power of two, under 3%
// error), constant memory, for percentiles like p50, p99 and p99.9.
#pragma once

#include <array>
#include <cstdint>

namespace fleetcast {

class latency_histogram {
 public:
  void record(std::uint64_t micros) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }
  // The smallest latency (microseconds, bucket upper bound) at or below
  // which `quantile` (0..1) of the recorded values lie; 0 when empty.
  std::uint64_t percentile(double quantile) const noexcept;

 private:
  static constexpr int sub_bits = 5;  // 32 sub-buckets per power of two
  static constexpr int buckets = 64 << sub_bits;
  static std::size_t index_of(std::uint64_t v) noexcept;
  static std::uint64_t upper_bound(std::size_t index) noexcept;
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace fleetcast
