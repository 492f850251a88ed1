// progress_view: the progress line of `fleetcast run`, pure. Fed the run's
// counts with the time (the caller's clock), it keeps the rate over the last
// seconds and renders one line that fits a width: percentage, done of total
// ("~" while the total is an estimate), current rate, ETA, what sending waits
// for, failures. Fields are dropped, least useful first, to fit; the line
// never holds more than width - 1 characters (so a terminal never wraps it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

namespace fleetcast {

struct progress_counts {
  std::uint64_t done = 0;   // records with a final result, earlier runs included
  std::uint64_t total = 0;  // 0: unknown (a pipe)
  bool total_exact = false;
  std::uint64_t failed = 0, skipped = 0, requests = 0, retries = 0;
  std::string_view waiting_for;  // empty: not waiting for anything worth saying
};

class progress_view {
 public:
  explicit progress_view(double window_s = 10) : window_s_(window_s) {}

  // Devices sent by this run so far (succeeded + failed), at `now_s`.
  void sample(double now_s, std::uint64_t sent);
  // Devices sent per second over the last window (0 before two samples).
  double current_rate() const noexcept;

  // The line for `width` columns (0: no limit), ASCII only.
  std::string line(const progress_counts& c, std::size_t width) const;

 private:
  double window_s_;
  std::deque<std::pair<double, std::uint64_t>> samples_;
};

// "1,234,567".
std::string grouped(std::uint64_t n);
// "12 s", "3:05", "1:02:03".
std::string duration_text(double seconds);
// "950", "12.3k", "1.25M".
std::string rate_text(double per_s);

}  // namespace fleetcast
