// Where a run's tokens come from, with time passed in: each source's first
// token and requests, a provider's stale and second replies, stops that end
// what is under way, renewals before expiry and after a refusal, a file
// watched on the tick.
#include "core/auth/token_supply.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;
using source = token_supply::source;
using start = token_supply::step::start;

TEST_CASE("token supply: each source's first token and what a request starts") {
  CHECK(token_supply(source::provider).first() == start::nothing);
  CHECK(token_supply(source::command).first() == start::nothing);
  CHECK(token_supply(source::memory).first() == start::use_memory);
  CHECK(token_supply(source::read).first() == start::read_now);
  CHECK(token_supply(source::refresh).first() == start::read_now);

  CHECK(token_supply(source::memory).requested(0).what == start::use_memory);
  CHECK(token_supply(source::command).requested(0).what == start::run_command);
  CHECK(token_supply(source::read).requested(0).what == start::read_now);
  token_supply p(source::provider);
  CHECK(p.requested(0).what == start::ask_provider);
  CHECK(p.provider_waiting());
  token_supply r(source::refresh);
  r.began(1000, 0);
  CHECK(r.requested(1000).what == start::refresh);  // refused: renewed at once
  CHECK(r.renewal().under_way());
  CHECK(r.requested(1001).what == start::nothing);  // one renewal at a time
}

TEST_CASE("token supply: a provider's reply counts once, and only for its request") {
  token_supply p(source::provider);
  p.requested(0);
  const auto first = p.generation();
  auto v = p.provider_replied(first, "");
  CHECK(v.accepted);
  CHECK_FALSE(v.fail);
  CHECK_FALSE(p.provider_waiting());
  v = p.provider_replied(first, "");  // a second reply to the same request
  CHECK_FALSE(v.accepted);
  CHECK_FALSE(v.fail);

  p.requested(0);
  const auto second = p.generation();
  CHECK(second != first);
  v = p.provider_replied(first, "");  // an old request's reply
  CHECK_FALSE(v.accepted);
  CHECK(p.provider_waiting());
  v = p.provider_replied(second, "it is not one line of printable ASCII");
  CHECK_FALSE(v.accepted);
  REQUIRE(v.fail);
  CHECK(v.fail->text == "the token provider: it is not one line of printable ASCII");
  CHECK_FALSE(v.fail->cancelled);

  p.requested(0);
  const auto f = p.provider_threw("no network");
  CHECK(f.text == "the token provider threw: no network");
  CHECK_FALSE(p.provider_waiting());
}

TEST_CASE("token supply: a stop ends a provider's wait, and its late reply is dropped") {
  token_supply p(source::provider);
  CHECK_FALSE(p.stopped(true, false).fail);  // nothing asked: nothing to end
  p.requested(0);
  const auto g = p.generation();
  const auto s = p.stopped(true, false);
  REQUIRE(s.fail);
  CHECK(s.fail->text == "stopped while waiting for the token provider");
  CHECK(s.fail->cancelled);
  CHECK_FALSE(s.kill_command);
  CHECK_FALSE(p.provider_waiting());
  const auto late = p.provider_replied(g, "");
  CHECK_FALSE(late.accepted);
  CHECK_FALSE(late.fail);
  CHECK_FALSE(p.stopped(false, true).fail);  // a cut alone does not end a provider's wait
}

TEST_CASE("token supply: a stop kills the command, and its end says whether a stop ended it") {
  token_supply c(source::command);
  c.requested(0);
  const auto s = c.stopped(true, false);
  CHECK(s.kill_command);
  CHECK_FALSE(s.cut_refresh);
  CHECK_FALSE(s.fail);  // the command's end says it (command_ended)
  const auto killed = c.command_ended("the token command was killed", true);
  REQUIRE(killed);
  CHECK(killed->cancelled);
  const auto failed = c.command_ended("the token command exited with status 3", false);
  REQUIRE(failed);
  CHECK_FALSE(failed->cancelled);
  CHECK_FALSE(c.command_ended("", false));  // a token: given
  CHECK_FALSE(token_supply(source::read).stopped(true, true).kill_command);
}

TEST_CASE("token supply: renewals before expiry on the tick, fresh or rotated") {
  token_supply r(source::refresh);
  r.began(1000, 1000 + 7200);  // due 5 minutes before the end
  CHECK(r.tick(7899).what == start::nothing);
  CHECK_FALSE(r.tick(7899).reread_if_changed);  // a refresh endpoint's file is its own
  CHECK(r.tick(7900).what == start::refresh);
  CHECK(r.tick(7901).what == start::nothing);  // under way
  // Nobody asked: the new token is a rotation.
  auto v = r.refresh_ended(7902, "", false, 7902 + 7200, std::nullopt);
  CHECK(v.token == token_supply::refresh_verdict::give::rotated);
  CHECK_FALSE(v.fail);
  CHECK(r.tick(7903).what == start::nothing);
  // A refused token asks: the new token is the answer to its request.
  CHECK(r.requested(8000).what == start::refresh);
  v = r.refresh_ended(8001, "", false, 8001 + 7200, std::nullopt);
  CHECK(v.token == token_supply::refresh_verdict::give::fresh);
}

TEST_CASE("token supply: failed renewals, a stop during one, and tokens refused at once") {
  token_supply r(source::refresh);
  r.began(1000, 0);
  // A refused token's renewal fails every time: given up after max_tries.
  CHECK(r.requested(1000).what == start::refresh);
  std::int64_t now = 1000;
  token_supply::refresh_verdict v;
  unsigned tries = 1;
  for (; tries < 10; ++tries) {
    v = r.refresh_ended(now, "no answer from the refresh endpoint", false, 0, std::nullopt);
    if (v.fail) break;
    CHECK(v.token == token_supply::refresh_verdict::give::nothing);
    CHECK(r.tick(now).what == start::nothing);  // the backoff first
    now = r.renewal().next_s();
    REQUIRE(r.tick(now).what == start::refresh);
  }
  REQUIRE(v.fail);
  CHECK(tries == token_renewal::config{}.max_tries);
  CHECK(v.fail->text == "renewing it at the refresh endpoint failed 4 times: no answer from the "
                        "refresh endpoint");
  CHECK_FALSE(v.fail->cancelled);

  // A stop while a requested renewal waits for its backoff: it fails at
  // once, cancelled; the renewal's connection is cut.
  token_supply w(source::refresh);
  w.began(1000, 0);
  w.requested(1000);
  w.refresh_ended(1000, "refused", false, 0, std::nullopt);  // waits for its backoff now
  auto s = w.stopped(false, true);
  CHECK(s.cut_refresh);
  REQUIRE(s.fail);
  CHECK(s.fail->text == "stopped while waiting to renew the token");
  CHECK(s.fail->cancelled);
  // During the renewal: its end, cut, says so.
  token_supply u(source::refresh);
  u.began(1000, 0);
  u.requested(1000);
  s = u.stopped(true, false);
  CHECK(s.cut_refresh);
  CHECK_FALSE(s.fail);  // under way: its end says it
  v = u.refresh_ended(1001, "stopped", true, 0, std::nullopt);
  REQUIRE(v.fail);
  CHECK(v.fail->text == "stopped while renewing the token");
  CHECK(v.fail->cancelled);

  // Each renewed token refused at once: the job fails instead of a loop.
  token_supply q(source::refresh);
  q.began(1000, 0);
  now = 1000;
  token_supply::step st;
  for (unsigned i = 0; i < 10; ++i) {
    st = q.requested(now);
    if (st.fail) break;
    REQUIRE(st.what == start::refresh);
    q.refresh_ended(now, "", false, 0, std::nullopt);
    now += 1;
  }
  REQUIRE(st.fail);
  CHECK(st.fail->text.find("refused (5032) right after each of its last renewals") !=
        std::string::npos);
}

TEST_CASE("token supply: a file or the environment is watched on the tick, nothing else is") {
  CHECK(token_supply(source::read).tick(0).reread_if_changed);
  CHECK(token_supply(source::read).tick(0).what == start::nothing);
  for (auto other : {source::provider, source::memory, source::command}) {
    const auto s = token_supply(other).tick(1'000'000);
    CHECK_FALSE(s.reread_if_changed);
    CHECK(s.what == start::nothing);
  }
}
