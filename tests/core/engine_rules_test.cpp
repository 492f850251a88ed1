// The engine's pure decisions: rate, backoff, retry budget, batch size,
// and what to do after each kind of try.
#include "core/dispatch/adaptive_rate.hpp"
#include "core/dispatch/batch_sizer.hpp"
#include "core/dispatch/retry_policy.hpp"
#include "core/dispatch/token_bucket.hpp"
#include "core/protocol/attempt_classifier.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("token bucket: a burst, then the rate, callers queued behind one another") {
  token_bucket b(10, 5);  // 10/s, burst 5
  for (int i = 0; i < 5; ++i) CHECK(b.reserve(1, 0) == 0);
  CHECK(b.reserve(1, 0) == 100'000);            // the 6th waits 0.1 s
  CHECK(b.reserve(1, 0) == 200'000);            // the 7th 0.2 s
  CHECK(b.reserve(1, 1'000'000) == 1'000'000);  // refilled by then (8 tokens back, 3 owed)
  // Over any window of one second, at most rate + burst pass.
  token_bucket w(20, 1);
  int in_first_second = 0;
  std::int64_t t = 0;
  for (int i = 0; i < 100; ++i) {
    t = std::max(t, w.reserve(1, t));
    if (t < 1'000'000) ++in_first_second;
  }
  CHECK(in_first_second <= 21);
  CHECK(in_first_second >= 20);
  token_bucket unlimited(0, 1);
  CHECK(unlimited.reserve(1000, 42) == 42);
  // Device rate: a 500-device batch against 100 devices/s with burst 100.
  token_bucket d(100, 100);
  CHECK(d.reserve(500, 0) == 0);  // a batch larger than the burst goes once the bucket is full
  CHECK(d.reserve(100, 0) == 5'000'000);  // and the next pays its debt: 600 devices by 5 s + burst
}

TEST_CASE("adaptive rate: halves on throttling once per second, recovers additively") {
  adaptive_rate r(100);
  CHECK(r.rate() == 100);
  r.on_throttle(0, 100);
  CHECK(r.rate() == 50);
  r.on_throttle(500'000, 100);  // same event
  CHECK(r.rate() == 50);
  r.on_throttle(1'000'000, 50);
  CHECK(r.rate() == 25);
  CHECK(!r.tick(1'500'000));
  CHECK(r.tick(2'000'000));
  CHECK(r.rate() == 35);
  for (std::int64_t t = 3; t < 20; ++t) r.tick(t * 1'000'000);
  CHECK(r.rate() == 100);  // never above the configured rate
  CHECK(!r.throttled());
  adaptive_rate u(0);  // unlimited: throttling starts a limit below what was seen
  u.on_throttle(0, 400);
  CHECK(u.rate() == 200);
  for (std::int64_t t = 1; t < 30; ++t) u.tick(t * 1'000'000);
  CHECK(u.rate() == 0);  // unlimited again
}

TEST_CASE("backoff: full jitter under an exponential cap, Retry-After honoured") {
  retry_config c;
  c.base_delay_ms = 200;
  c.max_delay_ms = 1000;
  retry_policy p(c);
  CHECK(p.delay_ms(2, 0.999) == 199);
  CHECK(p.delay_ms(3, 0.999) == 399);
  CHECK(p.delay_ms(4, 0.999) == 799);
  CHECK(p.delay_ms(5, 0.999) == 999);  // capped
  CHECK(p.delay_ms(40, 0.999) == 999);
  CHECK(p.delay_ms(3, 0.0) == 0);  // full jitter reaches zero
  CHECK(p.delay_ms(2, 0.5, 3000) == 3000);
}

TEST_CASE("retries: within max_attempts and within the budget") {
  retry_config c;
  c.max_attempts = 3;
  retry_policy p(c, 0.2);
  CHECK(p.allow_retry(1));
  CHECK(p.allow_retry(2));
  CHECK(!p.allow_retry(3));  // the third try was the last
  // With every request failing, retries stop at 20% of requests plus 10.
  retry_config many;
  many.max_attempts = 100;
  retry_policy q(many, 0.2);
  int allowed = 0;
  for (int i = 0; i < 100; ++i) {
    q.count_request();
    if (q.allow_retry(1)) ++allowed;
  }
  CHECK(allowed == 30);
  CHECK(q.budget_exhausted());
}

TEST_CASE("batch size: halves below a 5312, then settles on the largest accepted") {
  batch_sizer s(500);
  CHECK(s.current() == 500);
  s.on_accepted(500);
  CHECK(s.current() == 500);
  // Server limit 100: search.
  batch_sizer t(500);
  int guard = 0;
  while (!t.settled() && guard++ < 50) {
    const auto n = t.current();
    if (n > 100) {
      t.on_too_long(n);
    } else {
      t.on_accepted(n);
    }
  }
  CHECK(t.settled());
  CHECK(t.current() == 100);
  CHECK(t.largest_accepted() == 100);
  CHECK(guard < 15);
  // The limit drops later: follow it down.
  t.on_too_long(100);
  CHECK(t.current() < 100);
  batch_sizer one(1);
  one.on_too_long(1);
  CHECK(one.current() == 1);
}

TEST_CASE("every kind of try leads to its documented action") {
  using st = attempt_result::stage;
  using act = attempt_action;
  const auto retry = unknown_outcome_policy::retry;
  const auto fail = unknown_outcome_policy::fail;
  auto http = [](int status) { return attempt_result{st::answered, status, false, 0}; };
  auto code = [](std::int64_t c) { return attempt_result{st::answered, 200, true, c}; };

  CHECK(classify_attempt({st::not_written}, 10, retry).action == act::resend);
  CHECK(classify_attempt({st::not_written}, 10, fail).action == act::resend);
  CHECK(classify_attempt({st::no_answer}, 10, retry).action == act::retry);
  CHECK(classify_attempt({st::no_answer}, 10, fail).action == act::fail_uncertain);
  auto v429 = classify_attempt(http(429), 10, retry);
  CHECK(v429.action == act::resend);
  CHECK(v429.slow_down);
  auto v503 = classify_attempt(http(503), 10, fail);
  CHECK(v503.action == act::resend);
  CHECK(v503.slow_down);
  CHECK(classify_attempt(http(502), 10, retry).action == act::retry);
  CHECK(classify_attempt(http(504), 10, retry).action == act::retry);
  CHECK(classify_attempt(http(502), 10, fail).action == act::fail_uncertain);
  CHECK(classify_attempt(http(500), 10, retry).action == act::retry);
  CHECK(classify_attempt(http(401), 10, retry).action == act::refresh_token);
  CHECK(classify_attempt(http(404), 10, retry).action == act::fail_job);
  CHECK(classify_attempt(http(200), 10, retry).action == act::retry);  // garbled 200
  CHECK(classify_attempt(code(200), 10, retry).action == act::account);
  CHECK(classify_attempt(code(5032), 10, retry).action == act::refresh_token);
  auto v5340 = classify_attempt(code(5340), 10, retry);
  CHECK(v5340.action == act::retry);
  CHECK(v5340.slow_down);
  CHECK(classify_attempt(code(5312), 10, retry).action == act::split_too_long);
  CHECK(classify_attempt(code(5312), 1, retry).action == act::fail_job);
  CHECK(classify_attempt(code(5041), 10, retry).action == act::split_permission);
  CHECK(classify_attempt(code(5041), 1, retry).action == act::fail_batch);
  CHECK(classify_attempt(code(5106), 10, retry).action == act::fail_job);
  for (std::int64_t c : {5070, 5071, 5072, 5073, 5074, 5075, 5311, 5328, 5329, 5330, 5331}) {
    CAPTURE(c);
    CHECK(classify_attempt(code(c), 10, retry).action == act::fail_job);
    CHECK(is_validation_code(c));
  }
  CHECK(classify_attempt(code(9999), 10, retry).action == act::fail_batch);
  CHECK(!is_validation_code(5312));
}

#include "core/output/latency_histogram.hpp"

TEST_CASE("latency histogram: percentiles within the bucket error") {
  latency_histogram h;
  CHECK(h.percentile(0.5) == 0);
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v);
  CHECK(h.count() == 100000);
  CHECK(h.max() == 100000);
  const auto near = [](std::uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want * 0.035;
  };
  CHECK(near(h.percentile(0.5), 50000));
  CHECK(near(h.percentile(0.9), 90000));
  CHECK(near(h.percentile(0.99), 99000));
  CHECK(near(h.percentile(0.999), 99900));
  CHECK(h.percentile(1.0) == 100000);
  latency_histogram small;
  for (int i = 0; i < 99; ++i) small.record(3);
  small.record(1'000'000);
  CHECK(small.percentile(0.5) == 3);
  CHECK(small.percentile(0.99) == 3);
  CHECK(small.percentile(0.999) == 1'000'000);
}

TEST_CASE("at-most-once: under unknown_outcome \"fail\" nothing that may have executed is resent") {
  using st = attempt_result::stage;
  using act = attempt_action;
  const auto fail = unknown_outcome_policy::fail;
  auto http = [](int status) { return attempt_result{st::answered, status, false, 0}; };
  auto code = [](std::int64_t c) { return attempt_result{st::answered, 200, true, c}; };
  // Every answer that may follow an executed request: a policy of "fail"
  // ends it (uncertain), never a retry or a resend.
  for (int s : {500, 502, 504, 505, 507, 520, 599}) {
    CAPTURE(s);
    CHECK(classify_attempt(http(s), 10, fail).action == act::fail_uncertain);
  }
  CHECK(classify_attempt(code(5340), 10, fail).action == act::fail_uncertain);
  CHECK(classify_attempt(code(5340), 10, fail).slow_down);
  CHECK(classify_attempt(http(200), 10, fail).action == act::fail_uncertain);  // garbled 200
  CHECK(classify_attempt({st::no_answer}, 1, fail).action == act::fail_uncertain);
  // What was certainly not executed may be sent again under either policy.
  CHECK(classify_attempt(http(429), 10, fail).action == act::resend);
  CHECK(classify_attempt(http(503), 10, fail).action == act::resend);
  CHECK(classify_attempt(code(5312), 10, fail).action == act::split_too_long);
}

TEST_CASE("token bucket: after any idle time, exactly burst requests pass at once") {
  for (double burst : {1.0, 2.0, 5.0, 20.0}) {
    CAPTURE(burst);
    token_bucket b(10, burst);
    b.reserve(1, 0);                           // started
    const std::int64_t later = 3'600'000'000;  // an hour of refill
    int at_once = 0;
    while (b.reserve(1, later) == later && at_once < 100) ++at_once;
    CHECK(at_once == static_cast<int>(burst));
  }
  // The same after a set_rate, and at the very first reserve.
  token_bucket f(4, 3);
  int first = 0;
  while (f.reserve(1, 7) == 7 && first < 100) ++first;
  CHECK(first == 3);
  f.set_rate(8, 10'000'000);
  int again = 0;
  while (f.reserve(1, 60'000'000) == 60'000'000 && again < 100) ++again;
  CHECK(again == 3);
}

TEST_CASE("batch size: accepts and refusals in any order keep the size in range, then it settles") {
  // Batches written before a refusal can be answered after it, and a limit
  // can move: whatever came before, the size stays within [1, the largest
  // accepted or the configured maximum], and against a fixed limit the
  // search settles within a bounded number of tries on a size that limit
  // accepts.
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto rnd = [&](std::uint64_t n) {  // xorshift: reproducible
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };
  for (int round = 0; round < 3000; ++round) {
    const std::size_t start = 1 + rnd(round % 3 == 0 ? 10 : 1000);
    batch_sizer s(start);
    std::size_t accepted_max = 0;
    bool refused = false;
    const int steps = static_cast<int>(rnd(12));
    for (int i = 0; i < steps; ++i) {
      const std::size_t size = 1 + rnd(std::max(start, accepted_max));
      if (rnd(2)) {
        s.on_accepted(size);
        accepted_max = std::max(accepted_max, size);
      } else {
        s.on_too_long(size);
        refused = true;
      }
      CAPTURE(round);
      CAPTURE(i);
      REQUIRE(s.current() >= 1);
      REQUIRE(s.current() <= std::max(start, accepted_max));
    }
    const std::size_t limit = 1 + rnd(1200);
    int tries = 0;
    bool stable = false;  // the size in use is accepted, and accepting it changes nothing
    while (!stable && tries < 64) {
      const std::size_t n = s.current();
      REQUIRE(n >= 1);
      REQUIRE(n <= std::max(start, accepted_max));
      if (n <= limit) {
        s.on_accepted(n);
        accepted_max = std::max(accepted_max, n);
        stable = s.current() == n;
      } else {
        s.on_too_long(n);
        refused = true;
      }
      ++tries;
    }
    CAPTURE(round);
    CAPTURE(start);
    CAPTURE(limit);
    CHECK(stable);
    CHECK(tries <= 24);  // about two binary searches at most (a stale accept, then the limit)
    CHECK(s.current() <= limit);
    if (refused) CHECK(s.settled());
    if (steps == 0) {
      // No history: the largest size allowed by both limit and start, or the
      // start itself when nothing was ever refused.
      CHECK(s.current() == (limit >= start ? start : limit));
    }
  }
  // The sequence that once broke it: refused 500, refused 250, then the
  // answer to a 300 written before the refusals: accepted.
  batch_sizer b(500);
  b.on_too_long(500);
  b.on_too_long(250);
  b.on_accepted(300);
  CHECK(b.current() >= 1);
  CHECK(b.current() <= 500);
  CHECK(b.current() == 300);
}
