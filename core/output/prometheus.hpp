// prometheus: metrics in the Prometheus text exposition format (version
// 0.0.4): counters, gauges and fixed-bucket histograms, written into a
// caller's buffer. Not thread-safe: the owner locks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcast::prometheus {

// `# HELP` and `# TYPE` lines for a metric family.
void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help);

// One sample: name{label="value"} value. An empty label name means none;
// label values are escaped (backslash, quote, newline).
void append_sample(std::string& out, std::string_view name, std::string_view label,
                   std::string_view label_value, double value);

// One sample with several labels: name{a="x",b="y"} value.
using label_pair = std::pair<std::string_view, std::string_view>;
void append_sample(std::string& out, std::string_view name,
                   std::initializer_list<label_pair> labels, double value);

// A histogram over fixed upper bounds (ascending), cumulative on output.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  void append(std::string& out, std::string_view name, std::string_view help) const;
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // one per bound, and +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace fleetcast::prometheus
