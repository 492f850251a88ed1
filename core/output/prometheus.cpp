// Prometheus text format (see prometheus.hpp).
#include "core/output/prometheus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fleetcast::prometheus {
namespace {

void append_value(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<long long>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

void append_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void append_sample(std::string& out, std::string_view name, std::string_view label,
                   std::string_view label_value, double value) {
  if (label.empty()) {
    append_sample(out, name, {}, value);
  } else {
    append_sample(out, name, {{label, label_value}}, value);
  }
}

void append_sample(std::string& out, std::string_view name,
                   std::initializer_list<label_pair> labels, double value) {
  out += name;
  char sep = '{';
  for (const auto& [key, text] : labels) {
    out += sep;
    sep = ',';
    out += key;
    out += "=\"";
    append_label_value(out, text);
    out += '"';
  }
  if (sep == ',') out += '}';
  out += ' ';
  append_value(out, value);
  out += '\n';
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void histogram::observe(double v) noexcept {
  const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[static_cast<std::size_t>(at)];
  sum_ += v;
  ++count_;
}

void histogram::append(std::string& out, std::string_view name, std::string_view help) const {
  append_header(out, name, "histogram", help);
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    le.clear();
    append_value(le, i < bounds_.size() ? bounds_[i] : INFINITY);
    append_sample(out, bucket, "le", le, static_cast<double>(cumulative));
  }
  append_sample(out, fmt::format("{}_sum", name), "", "", sum_);
  append_sample(out, fmt::format("{}_count", name), "", "", static_cast<double>(count_));
}

}  // namespace fleetcast::prometheus
