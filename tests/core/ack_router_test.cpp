// A subscription shared by several runs: the router itself decides where
// each message goes (the run that knows its ticket; held for a run that
// has the device's request on its way; unmatched at once when no run can
// take it), and every message ends exactly once; time passed in.
#include "core/acks/ack_router.hpp"
#include "core/input/device_hash.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <map>
#include <random>
#include <set>
#include <utility>

using namespace fleetcast;
using kind = ack_router::action::kind;

namespace {

subscription_message reqack(std::string ticket, std::string device = "") {
  subscription_message m;
  m.what = subscription_message::kind::reqack;
  m.product_key = "p1";
  m.device_key = device.empty() ? "d-" + ticket : device;
  m.ticket = std::move(ticket);
  m.delivered = true;
  return m;
}

std::uint64_t device_of(const std::string& ticket) {
  return device_hash("p1", "d-" + ticket);
}

// A run as the router sees it: the tickets it was given, the devices whose
// requests are on their way.
struct fake_run final : ack_router::member_view {
  std::set<std::string> tickets;
  std::set<std::uint64_t> flying;
  bool knows(const std::string& t) const override { return tickets.contains(t); }
  bool awaits(std::uint64_t d) const override { return flying.contains(d); }
};

std::vector<ack_router::action> take(ack_router& r) {
  return std::exchange(r.actions(), {});
}

}  // namespace

TEST_CASE(
    "ack_router: a known ticket goes to the run that knows it, other messages are acknowledged") {
  ack_router r(1000, 10);
  fake_run a, b;
  b.tickets = {"t1"};
  r.join(3, a);
  r.join(7, b);
  r.on_message(reqack("t1"), 1, 0);
  subscription_message other;
  other.what = subscription_message::kind::other;
  r.on_message(other, 2, 0);
  subscription_message bad;
  r.on_message(bad, 3, 0);
  const auto acts = take(r);
  REQUIRE(acts.size() == 3);
  CHECK(acts[0].what == kind::deliver);
  CHECK(acts[0].member == 7);  // b's, not a's
  CHECK(acts[0].tag == 1);
  CHECK_FALSE(acts[0].early);
  CHECK(acts[0].message.ticket == "t1");
  CHECK(acts[1].what == kind::accept);
  CHECK(acts[1].tag == 2);
  CHECK(acts[2].what == kind::accept);
  CHECK(acts[2].tag == 3);
  CHECK(r.totals().received == 3);
  CHECK(r.totals().routed == 1);
  CHECK(r.totals().other_messages == 1);
  CHECK(r.totals().malformed == 1);
  CHECK(r.held() == 0);
}

TEST_CASE("ack_router: an ack before its ticket is held for a run that has the device on its way") {
  ack_router r(1000, 10);
  fake_run run;
  run.flying = {device_of("t1")};
  r.join(3, run);
  r.on_message(reqack("t1"), 1, 0);
  r.on_message(reqack("t1"), 2, 5);  // a duplicate, held too
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

TEST_CASE(
    "ack_router: another application's messages are no run's: unmatched at once, never held") {
  ack_router r(600'000, 100);
  fake_run run;
  run.flying = {device_of("mine")};
  r.join(1, run);
  for (std::uint64_t i = 0; i < 10'000; ++i) r.on_message(reqack(fmt::format("x{}", i)), i, 0);
  CHECK(r.held() == 0);
  CHECK(take(r).size() == 10'000);
  CHECK(r.totals().unmatched == 10'000);
  CHECK(r.totals().overflow == 0);
  r.on_message(reqack("mine"), 20'000, 1);  // still room for the run's own early ack
  CHECK(r.held() == 1);
  run.tickets = {"mine"};
  r.on_ticket(1, "mine");
  const auto a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].what == kind::deliver);
}

TEST_CASE(
    "ack_router: held past hold_ms, beyond max_held, or once no run awaits its device, is "
    "unmatched") {
  ack_router r(1000, 2);
  fake_run run;
  for (auto t : {"a", "b", "c", "d", "e"}) run.flying.insert(device_of(t));
  r.join(1, run);
  r.on_message(reqack("a"), 1, 0);
  r.on_message(reqack("b"), 2, 400);
  r.advance(999);
  CHECK(take(r).empty());
  r.advance(1000);
  auto a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].what == kind::accept);
  CHECK(a[0].tag == 1);
  CHECK(r.totals().unmatched == 1);
  r.on_message(reqack("c"), 3, 500);
  r.on_message(reqack("d"), 4, 600);  // a third held: the oldest goes, for want of room
  a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].tag == 2);
  CHECK(r.held() == 2);
  CHECK(r.totals().unmatched == 2);
  CHECK(r.totals().overflow == 1);
  // c's request got its result without this ticket: nobody can take it.
  run.flying.erase(device_of("c"));
  r.advance(700);
  a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].tag == 3);
  CHECK(r.held() == 1);
}

TEST_CASE("ack_router: a run that joins with tickets takes what is held for them") {
  ack_router r(1000, 10);
  fake_run waiting;
  for (int i = 0; i < 6; ++i) waiting.flying.insert(device_of(fmt::format("t{}", i)));
  r.join(1, waiting);
  for (std::uint64_t i = 0; i < 6; ++i) r.on_message(reqack(fmt::format("t{}", i)), i, 0);
  CHECK(r.held() == 6);
  fake_run resumed;
  resumed.tickets = {"t1", "t4"};
  r.join(4, resumed);
  const auto a = take(r);
  REQUIRE(a.size() == 2);
  std::set<std::uint64_t> tags{a[0].tag, a[1].tag};
  CHECK(tags == std::set<std::uint64_t>{1, 4});
  for (const auto& x : a) CHECK(x.member == 4);
  CHECK(r.held() == 4);
  // A run that leaves is asked nothing any more.
  r.leave(1);
  r.advance(1);
  CHECK(take(r).size() == 4);
  CHECK(r.held() == 0);
}

TEST_CASE("ack_router: a dropped connection gives back what was held") {
  ack_router r(1000, 10);
  fake_run run;
  run.flying = {device_of("a"), device_of("b")};
  r.join(1, run);
  r.on_message(reqack("a"), 1, 0);
  r.on_message(reqack("b"), 2, 0);
  r.on_disconnect();
  CHECK(r.held() == 0);
  CHECK(r.totals().returned == 2);
  r.advance(5000);
  r.on_ticket(1, "a");
  CHECK(take(r).empty());  // nothing left to acknowledge: the server delivers them again
  r.on_message(reqack("a"), 3, 5000);  // again, on the next connection
  r.on_ticket(1, "a");
  const auto a = take(r);
  REQUIRE(a.size() == 1);
  CHECK(a[0].tag == 3);
}

TEST_CASE("ack_router: under any order every message ends exactly once, with the run that has it") {
  std::mt19937 rng(11);
  for (int round = 0; round < 20; ++round) {
    ack_router r(200, 50);
    fake_run runs[4];
    for (ack_router::member_id m = 0; m < 4; ++m) r.join(m, runs[m]);
    std::map<std::string, ack_router::member_id> given;  // ticket -> its run
    std::map<std::uint64_t, int> ends;                   // tag -> actions seen
    std::uint64_t tag = 0, now = 0;
    std::uint64_t delivered_to_wrong = 0;
    const auto drain = [&] {
      for (const auto& a : take(r)) {
        ++ends[a.tag];
        if (a.what == kind::deliver && given.at(a.message.ticket) != a.member) ++delivered_to_wrong;
      }
    };
    for (int step = 0; step < 2000; ++step) {
      now += rng() % 3;
      const std::string ticket = fmt::format("t{}", rng() % 300);
      switch (rng() % 3) {
        case 0:
          r.on_message(reqack(ticket), ++tag, now);
          ends.try_emplace(tag, 0);
          break;
        case 1:  // a run writes the device's request
          if (!given.contains(ticket)) runs[rng() % 4].flying.insert(device_of(ticket));
          break;
        default:
          if (!given.contains(ticket)) {
            const auto member = static_cast<ack_router::member_id>(rng() % 4);
            given[ticket] = member;
            runs[member].tickets.insert(ticket);
            for (auto& run : runs) run.flying.erase(device_of(ticket));
            r.on_ticket(member, ticket);
          }
      }
      if (step % 50 == 0) r.advance(now);
      drain();
    }
    r.advance(now + 1000);  // everything left is given up
    drain();
    CHECK(r.held() == 0);
    CHECK(delivered_to_wrong == 0);
    for (const auto& [t, n] : ends) REQUIRE_MESSAGE(n == 1, "message ", t, " ended ", n, " times");
    const auto& c = r.totals();
    CHECK(c.routed + c.early + c.unmatched == c.received);
    CHECK(c.early > 0);
  }
}
