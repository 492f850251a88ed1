// The progress line: current rate over a window, ETA, fitting any width.
#include "core/output/progress_view.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("the rate is the last seconds', not the average since the start") {
  progress_view v(10);
  CHECK(v.current_rate() == 0);
  // 100 devices/s for 60 s, then 1,000 devices/s for 20 s.
  std::uint64_t sent = 0;
  for (int t = 0; t <= 60; ++t, sent += 100) v.sample(t, sent);
  CHECK(v.current_rate() == doctest::Approx(100));
  sent -= 100;
  for (int t = 61; t <= 80; ++t) v.sample(t, sent += 1000);
  CHECK(v.current_rate() == doctest::Approx(1000));  // the average would say 325
}

TEST_CASE("the line: percentage, done of total, rate, ETA, estimates marked") {
  progress_view v;
  v.sample(0, 0);
  v.sample(10, 50'000);
  progress_counts c;
  c.done = 50'000;
  c.total = 1'000'000;
  c.total_exact = true;
  c.requests = 500;
  auto line = v.line(c, 0);
  CHECK(line == "  5% 50,000/1,000,000 devices, 5.0k/s, ETA 3:10, 500 requests");
  c.total_exact = false;
  CHECK(v.line(c, 0).starts_with("  5% 50,000/~1,000,000 devices"));
  c.done = 1'200'000;  // past an estimate: never 100%, no ETA
  line = v.line(c, 0);
  CHECK(line.starts_with(" 99% 1,200,000/~1,000,000 devices"));
  CHECK(line.find("ETA") == std::string::npos);
  c.total_exact = true;
  c.done = c.total;
  CHECK(v.line(c, 0).starts_with("100% 1,000,000/1,000,000 devices"));
  c.total = 0;  // a pipe: no total, no percentage
  CHECK(v.line(c, 0).starts_with("1,000,000 devices, 5.0k/s"));

  progress_view still;
  still.sample(0, 0);
  still.sample(5, 0);
  c.total = 2'000'000;
  CHECK(still.line(c, 0).find("ETA --") != std::string::npos);
}

TEST_CASE("the line never reaches the terminal's width, what it waits for goes before the counts") {
  progress_view v;
  v.sample(0, 0);
  v.sample(10, 123'456);
  progress_counts c;
  c.done = 123'456;
  c.total = 10'000'000;
  c.total_exact = false;
  c.failed = 1'234;
  c.skipped = 56;
  c.retries = 789;
  c.requests = 98'765;
  c.waiting_for = "no connection for 12 s: connect to iot.example.com:443: Connection refused";
  for (std::size_t width = 20; width <= 200; ++width) {
    CAPTURE(width);
    const auto line = v.line(c, width);
    CHECK(line.size() <= width - 1);
    if (width > 33) CHECK(line.starts_with("  1% 123,456/~10,000,000 devices"));
  }
  const auto at80 = v.line(c, 80);
  CHECK(at80.find("ETA") != std::string::npos);
  CHECK(at80.find("waiting: no connection") != std::string::npos);
  CHECK(at80.ends_with("..."));
  CHECK(at80.find("failed") == std::string::npos);  // no room left after the wait
  const auto wide = v.line(c, 300);
  CHECK(wide.find("Connection refused, 1,234 failed, 56 skipped, 789 retries, 98,765 requests") !=
        std::string::npos);
  c.waiting_for = {};
  const auto at60 = v.line(c, 60);
  CHECK(at60 == "  1% 123,456/~10,000,000 devices, 12.3k/s, ETA 13:20");
}

TEST_CASE("durations and numbers as people read them") {
  CHECK(grouped(0) == "0");
  CHECK(grouped(999) == "999");
  CHECK(grouped(1000) == "1,000");
  CHECK(grouped(12345678) == "12,345,678");
  CHECK(duration_text(0.4) == "0 s");
  CHECK(duration_text(59) == "59 s");
  CHECK(duration_text(61) == "1:01");
  CHECK(duration_text(3 * 3600 + 62) == "3:01:02");
  CHECK(rate_text(950) == "950");
  CHECK(rate_text(12'345) == "12.3k");
  CHECK(rate_text(1'250'000) == "1.25M");
}
