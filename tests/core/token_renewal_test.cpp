// When a token is renewed and what a failed renewal means, with time passed
// in: bad clocks, expiries in the past, endpoints that fail or hand out
// tokens that are refused at once.
#include "core/auth/token_renewal.hpp"
#include "core/protocol/token_refresh.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("token renewal: a quarter of the life before the end, at most 5 minutes") {
  token_renewal r;
  r.obtained(1000, 1000 + 7200);
  CHECK(r.next_s() == 1000 + 7200 - 300);
  CHECK_FALSE(r.due(7899));
  CHECK(r.due(7900));
  r.obtained(1000, 1000 + 400);  // a short life: a quarter before
  CHECK(r.next_s() == 1000 + 300);
  r.obtained(1000, 0);  // no expiry known: only when refused
  CHECK(r.next_s() == 0);
  CHECK_FALSE(r.due(1'000'000));
}

TEST_CASE("token renewal: the server's clock is used, ours may be hours off") {
  // Our clock is 3 hours ahead of the server's: by ours the token has
  // expired already; by the server's it has 2 hours.
  const std::int64_t ours = 50'000, theirs = ours - 3 * 3600;
  token_renewal r;
  r.obtained(ours, theirs + 7200, theirs);
  CHECK(r.skew_s() == -3 * 3600);
  CHECK(r.next_s() == ours + 7200 - 300);
  // The skew stays for the next token (whose answer had no Date).
  r.started(ours + 6900);
  r.obtained(ours + 6900, theirs + 6900 + 7200);
  CHECK(r.next_s() == ours + 6900 + 7200 - 300);
  // Behind: 2 hours behind, the same token would look 4 hours long.
  token_renewal b;
  b.obtained(1000, 1000 + 7200 + 7200, 1000 + 7200);
  CHECK(b.next_s() == 1000 + 7200 - 300);
}

TEST_CASE("token renewal: an expiry in the past renews at most once a minute, not every tick") {
  token_renewal r;
  std::int64_t now = 10'000;
  r.obtained(now, now - 3600);  // expired an hour ago, by our clock
  int renewals = 0;
  for (int tick = 0; tick < 4 * 600; ++tick, now += 1) {  // 10 minutes at 250 ms, in s steps
    if (!r.due(now)) continue;
    ++renewals;
    r.started(now);
    r.obtained(now, now - 3600);  // each new one "expired" too
  }
  CHECK(renewals >= 9);
  CHECK(renewals <= 41);  // 2400 s / 60 s + the first
}

TEST_CASE(
    "token renewal: a refused token's renewal is tried max_tries times with backoff, then the job "
    "fails") {
  token_renewal r;
  r.obtained(0, 7200);
  r.refused(100);
  CHECK(r.requested());
  CHECK(r.due(100));
  std::int64_t now = 100;
  std::int64_t waits[3];
  for (int i = 0; i < 3; ++i) {
    r.started(now);
    CHECK_FALSE(r.due(now));  // one at a time
    CHECK(r.failed(now) == token_renewal::verdict::retry_later);
    waits[i] = r.next_s() - now;
    now = r.next_s();
    CHECK(r.due(now));
  }
  CHECK(waits[0] == 1);
  CHECK(waits[1] == 2);
  CHECK(waits[2] == 4);
  r.started(now);
  CHECK(r.failed(now) == token_renewal::verdict::give_up);
  CHECK_FALSE(r.due(now + 1000));
}

TEST_CASE("token renewal: tokens refused at once after each renewal end in a failure, not a loop") {
  token_renewal r;
  r.obtained(0, 7200);
  std::int64_t now = 5000;
  r.refused(now);
  int renewals = 0;
  auto v = token_renewal::verdict::retry_later;
  for (int i = 0; i < 20 && v == token_renewal::verdict::retry_later; ++i) {
    REQUIRE(r.due(now));
    r.started(now);
    ++renewals;
    r.obtained(now + 1, now + 7200);  // renewed...
    v = r.refused(now + 2);           // ...and refused again at once
    now += 2;
  }
  CHECK(renewals == 4);  // max_tries, then the job fails
  CHECK(v == token_renewal::verdict::give_up);
  CHECK_FALSE(r.due(now + 1000));
  // A token that worked a while starts a fresh count.
  token_renewal w;
  w.obtained(0, 7200);
  w.refused(10);
  w.started(10);
  w.obtained(11, 7211);
  CHECK(w.refused(11 + 3600) == token_renewal::verdict::retry_later);
  CHECK(w.due(11 + 3600));
  w.started(11 + 3600);
  CHECK(w.tries() == 1);
}

TEST_CASE("token renewal: a failure before expiry is tried again, never later than the end") {
  token_renewal r;
  r.obtained(0, 1000);  // due at 750
  r.started(750);
  CHECK(r.failed(750) == token_renewal::verdict::retry_later);
  CHECK(r.next_s() == 751);
  for (int i = 0; i < 30; ++i) {
    const auto at = r.next_s();
    r.started(at);
    CHECK(r.failed(at) == token_renewal::verdict::retry_later);  // never gives up on its own
    // Before the end: no later than the end; after it, within the backoff's cap.
    CHECK(r.next_s() <= (at < 1000 ? 1000 : at + 60));
  }
}

TEST_CASE("HTTP dates and a JWT's iat") {
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
  CHECK(parse_http_date("Wed, 02 Dec 2026 11:00:07 GMT") == 1796209207);
  CHECK_FALSE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"));
  CHECK_FALSE(parse_http_date(""));
  // {"iat":1700000000,"exp":1700007200}
  CHECK(jwt_issued_s("Bearer h.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwNzIwMH0.s") == 1700000000);
  CHECK(jwt_expiry_s("h.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwNzIwMH0.s") == 1700007200);
}
