#include "core/output/progress_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace fleetcast {

std::string grouped(std::uint64_t n) {
  auto digits = fmt::format("{}", n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<std::uint64_t>(std::max(0.0, std::round(seconds)));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

std::string rate_text(double per_s) {
  return per_s >= 1e6   ? fmt::format("{:.2f}M", per_s / 1e6)
         : per_s >= 1e3 ? fmt::format("{:.1f}k", per_s / 1e3)
                        : fmt::format("{:.0f}", per_s);
}

void progress_view::sample(double now_s, std::uint64_t sent) {
  samples_.emplace_back(now_s, sent);
  // Keep one sample at or before the window's start, so the window is full.
  while (samples_.size() > 2 && samples_[1].first <= now_s - window_s_) samples_.pop_front();
}

double progress_view::current_rate() const noexcept {
  if (samples_.size() < 2) return 0;
  const auto& [t0, n0] = samples_.front();
  const auto& [t1, n1] = samples_.back();
  return t1 > t0 ? static_cast<double>(n1 - n0) / (t1 - t0) : 0;
}

std::string progress_view::line(const progress_counts& c, std::size_t width) const {
  const double rate = current_rate();
  // The head: always shown.
  std::string head;
  if (c.total > 0) {
    double pct = 100.0 * static_cast<double>(c.done) / static_cast<double>(c.total);
    if (!c.total_exact) pct = std::min(pct, 99.0);  // an estimate is never "done"
    if (c.total_exact && c.done >= c.total) pct = 100;
    head = fmt::format("{:3.0f}% {}/{}{} devices", std::floor(pct), grouped(c.done),
                       c.total_exact ? "" : "~", grouped(c.total));
  } else {
    head = fmt::format("{} devices", grouped(c.done));
  }
  // The rest, most useful first; shown in this order too.
  enum field { f_rate, f_eta, f_wait, f_failed, f_skipped, f_retries, f_requests, f_count };
  std::array<std::string, f_count> text;
  text[f_rate] = fmt::format("{}/s", rate_text(rate));
  if (c.total > 0 && c.done < c.total)
    text[f_eta] =
        rate > 0 ? "ETA " + duration_text(static_cast<double>(c.total - c.done) / rate) : "ETA --";
  if (!c.waiting_for.empty()) text[f_wait] = fmt::format("waiting: {}", c.waiting_for);
  if (c.failed) text[f_failed] = fmt::format("{} failed", grouped(c.failed));
  if (c.skipped) text[f_skipped] = fmt::format("{} skipped", grouped(c.skipped));
  if (c.retries) text[f_retries] = fmt::format("{} retries", grouped(c.retries));
  text[f_requests] = fmt::format("{} requests", grouped(c.requests));

  const std::size_t limit = width == 0 ? SIZE_MAX : width - 1;
  std::size_t used = head.size();
  std::array<bool, f_count> shown{};
  for (int f = 0; f < f_count; ++f) {
    if (text[f].empty()) continue;
    const std::size_t need = 2 + text[f].size();  // ", " before it
    if (used + need <= limit) {
      shown[f] = true;
      used += need;
    } else if (f == f_wait && used + 2 + 12 <= limit) {
      // What it waits for matters more than the counts: cut it to fit.
      text[f].resize(limit - used - 2 - 3);
      text[f] += "...";
      shown[f] = true;
      used = limit;
    }
  }
  std::string out = head;
  for (int f = 0; f < f_count; ++f) {
    if (!shown[f]) continue;
    out += ", ";
    out += text[f];
  }
  if (out.size() > limit) out.resize(limit);  // a head wider than the terminal
  return out;
}

}  // namespace fleetcast
