// A subscription shared by several runs: each message goes to the run that
// knows its ticket, is held while no run does, and ends exactly once
// (delivered to a run, or given up as unmatched); time passed in.
#include "core/acks/ack_router.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <map>
#include <random>
#include <set>
#include <utility>

using namespace fleetcast;
using kind = ack_router::action::kind;

namespace {

subscription_message reqack(std::string ticket) {
  subscription_message m;
  m.what = subscription_message::kind::reqack;
  m.product_key = "p1";
  m.device_key = "d-" + ticket;
  m.ticket = std::move(ticket);
  m.delivered = true;
  return m;
}

std::vector<ack_router::action> take(ack_router& r) {
  return std::exchange(r.actions(), {});
}

}  // namespace

TEST_CASE("ack_router: a known ticket goes to its run, other messages are acknowledged") {
  ack_router r(1000, 10);
  r.on_message(reqack("t1"), 1, ack_router::member_id{7}, 0);
  subscription_message other;
  other.what = subscription_message::kind::other;
  r.on_message(other, 2, std::nullopt, 0);
  subscription_message bad;
  r.on_message(bad, 3, std::nullopt, 0);
  const auto a = take(r);
  REQUIRE(a.size() == 3);
  CHECK(a[0].what == kind::deliver);
  CHECK(a[0].member == 7);
  CHECK(a[0].tag == 1);
  CHECK_FALSE(a[0].early);
  CHECK(a[0].message.ticket == "t1");
  CHECK(a[1].what == kind::accept);
  CHECK(a[1].tag == 2);
  CHECK(a[2].what == kind::accept);
  CHECK(a[2].tag == 3);
  CHECK(r.totals().received == 3);
  CHECK(r.totals().routed == 1);
  CHECK(r.totals().other_messages == 1);
  CHECK(r.totals().malformed == 1);
  CHECK(r.held() == 0);
}

TEST_CASE("ack_router: an ack before its ticket is held, unacknowledged, until a run gets it") {
  ack_router r(1000, 10);
  r.on_message(reqack("t1"), 1, std::nullopt, 0);
  r.on_message(reqack("t1"), 2, std::nullopt, 5);  // a duplicate, held too
  CHECK(take(r).empty());
  CHECK(r.held() == 2);
  r.on_ticket(3, "t2");  // another ticket: nothing
  CHECK(take(r).empty());
  r.on_ticket(3, "t1");
  const auto a = take(r);
  REQUIRE(a.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(a[i].what == kind::deliver);
    CHECK(a[i].member == 3);
    CHECK(a[i].early);
    CHECK(a[i].tag == i + 1);
  }
  CHECK(r.held() == 0);
  CHECK(r.totals().early == 2);
  r.advance(10'000);  // what was given leaves nothing to give up
  CHECK(take(r).empty());
  CHECK(r.totals().unmatched == 0);
}

TEST_CASE("ack_router: held past hold_ms, or beyond max_held, is acknowledged as unmatched") {
  ack_router r(1000, 2);
  r.on_message(reqack("a"), 1, std::nullopt, 0);
  r.on_message(reqack("b"), 2, std::nullopt, 400);
  r.advance(999);
  CHECK(take(r).empty());
  r.advance(1000);
  auto a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].what == kind::accept);
  CHECK(a[0].tag == 1);
  CHECK(r.totals().unmatched == 1);
  r.on_message(reqack("c"), 3, std::nullopt, 500);
  r.on_message(reqack("d"), 4, std::nullopt, 600);  // a third held: the oldest goes
  a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].tag == 2);
  CHECK(r.held() == 2);
  CHECK(r.totals().unmatched == 2);
}

TEST_CASE("ack_router: a run that joins with tickets takes what is held for them") {
  ack_router r(1000, 10);
  for (std::uint64_t i = 0; i < 6; ++i) r.on_message(reqack(fmt::format("t{}", i)), i, {}, 0);
  r.on_member(4, [](const std::string& t) { return t == "t1" || t == "t4"; });
  const auto a = take(r);
  REQUIRE(a.size() == 2);
  std::set<std::uint64_t> tags{a[0].tag, a[1].tag};
  CHECK(tags == std::set<std::uint64_t>{1, 4});
  CHECK(r.held() == 4);
}

TEST_CASE("ack_router: a dropped connection gives back what was held") {
  ack_router r(1000, 10);
  r.on_message(reqack("a"), 1, std::nullopt, 0);
  r.on_message(reqack("b"), 2, std::nullopt, 0);
  r.on_disconnect();
  CHECK(r.held() == 0);
  CHECK(r.totals().returned == 2);
  r.advance(5000);
  r.on_ticket(1, "a");
  CHECK(take(r).empty());  // nothing left to acknowledge: the server delivers them again
  r.on_message(reqack("a"), 3, std::nullopt, 5000);  // again, on the next connection
  r.on_ticket(1, "a");
  const auto a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].tag == 3);
}

TEST_CASE("ack_router: under any order every message ends exactly once") {
  std::mt19937 rng(11);
  for (int round = 0; round < 20; ++round) {
    ack_router r(200, 50);
    std::map<std::string, ack_router::member_id> given;  // ticket -> its run
    std::map<std::uint64_t, int> ends;                   // tag -> actions seen
    std::uint64_t tag = 0, now = 0;
    const auto drain = [&] {
      for (const auto& a : take(r)) {
        ++ends[a.tag];
        if (a.what == kind::deliver) CHECK(given.at(a.message.ticket) == a.member);
      }
    };
    for (int step = 0; step < 2000; ++step) {
      now += rng() % 3;
      const std::string ticket = fmt::format("t{}", rng() % 300);
      if (rng() % 2) {
        const auto it = given.find(ticket);
        r.on_message(reqack(ticket), ++tag,
                     it == given.end() ? std::nullopt : std::optional(it->second), now);
        ends.try_emplace(tag, 0);
      } else if (!given.contains(ticket)) {
        const auto member = static_cast<ack_router::member_id>(rng() % 4);
        given[ticket] = member;
        r.on_ticket(member, ticket);
      }
      if (step % 50 == 0) r.advance(now);
      drain();
    }
    r.advance(now + 1000);  // everything left is given up
    drain();
    CHECK(r.held() == 0);
    for (const auto& [t, n] : ends) REQUIRE_MESSAGE(n == 1, "message ", t, " ended ", n, " times");
    const auto& c = r.totals();
    CHECK(c.routed + c.early + c.unmatched == c.received);
  }
}
