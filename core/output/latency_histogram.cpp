// Log-linear latency buckets (see latency_histogram.hpp).
#include "core/output/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fleetcast {

std::size_t latency_histogram::index_of(std::uint64_t v) noexcept {
  if (v < (1u << sub_bits)) return static_cast<std::size_t>(v);
  const int msb = 63 - std::countl_zero(v);  // >= sub_bits
  const int shift = msb - sub_bits;
  const std::uint64_t sub = (v >> shift) & ((1u << sub_bits) - 1);
  return static_cast<std::size_t>((shift + 1) << sub_bits) + static_cast<std::size_t>(sub);
}

std::uint64_t latency_histogram::upper_bound(std::size_t index) noexcept {
  if (index < (1u << sub_bits)) return index;
  const std::size_t shift = (index >> sub_bits) - 1;
  const std::uint64_t sub = index & ((1u << sub_bits) - 1);
  return ((((1ULL << sub_bits) | sub) + 1) << shift) - 1;
}

void latency_histogram::record(std::uint64_t micros) noexcept {
  ++counts_[std::min<std::size_t>(index_of(micros), buckets - 1)];
  ++count_;
  max_ = std::max(max_, micros);
}

std::uint64_t latency_histogram::percentile(double quantile) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(upper_bound(i), max_);
  }
  return max_;
}

}  // namespace fleetcast
