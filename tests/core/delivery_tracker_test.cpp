// Joining answers and acknowledgements: every device one outcome, whatever
// order, repetition or loss the subscription brings; time passed in.
#include "core/acks/delivery_tracker.hpp"
#include "core/input/device_hash.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <random>

using namespace fleetcast;

namespace {

subscription_message ack(std::string pk, std::string dk, std::string ticket, bool ok,
                         std::int64_t at = 1000) {
  subscription_message m;
  m.what = subscription_message::kind::reqack;
  m.product_key = std::move(pk);
  m.device_key = std::move(dk);
  m.ticket = std::move(ticket);
  m.delivered = ok;
  m.at_ms = at;
  return m;
}

// The device's request is written and not answered yet.
void flying(delivery_tracker& t, std::string_view pk, std::string_view dk) {
  t.sending(device_hash(pk, dk));
}

std::map<std::uint64_t, delivery_outcome> outcomes_of(delivery_tracker& t) {
  std::map<std::uint64_t, delivery_outcome> out;
  for (const auto& e : t.events()) {
    REQUIRE_MESSAGE(out.emplace(e.index, e.outcome).second, "device ", e.index, " decided twice");
  }
  return out;
}

}  // namespace

TEST_CASE("a subscription message: REQACK read, other types told apart, bad bodies say why") {
  auto m = read_subscription_message(
      R"({"productKey":"p12345","deviceKey":"1234567890","type":"REQACK","createdAt":1609316592000,)"
      R"("ticket":"23924d171977c121325ad1bf","gateway":{"productKey":"p12344","deviceKey":"1"},)"
      R"("data":{"sentAt":1609316592001,"status":"succ"}})");
  CHECK(m.what == subscription_message::kind::reqack);
  CHECK(m.product_key == "p12345");
  CHECK(m.device_key == "1234567890");
  CHECK(m.ticket == "23924d171977c121325ad1bf");
  CHECK(m.delivered);
  CHECK(m.at_ms == 1609316592001);
  // sentAt as a string (an older example), status fail.
  m = read_subscription_message(
      R"({"productKey":"p","deviceKey":"d","type":"REQACK","ticket":"7","data":{"sentAt":"42","status":"fail"}})");
  CHECK(m.what == subscription_message::kind::reqack);
  CHECK(!m.delivered);
  CHECK(m.at_ms == 42);
  // No sentAt: createdAt.
  m = read_subscription_message(
      R"({"productKey":"p","deviceKey":"d","type":"REQACK","createdAt":5,"ticket":"7","data":{"status":"succ"}})");
  CHECK(m.at_ms == 5);
  CHECK(read_subscription_message(R"({"type":"ONLINE","productKey":"p"})").what ==
        subscription_message::kind::other);
  CHECK(read_subscription_message(R"({"type":"MATTR","subtype":"REPORT"})").what ==
        subscription_message::kind::other);
  for (
      const char* bad :
      {"", "nope", "[1]", R"({"productKey":"p"})",
       R"({"type":"REQACK","deviceKey":"d","ticket":"t","data":{"status":"succ"}})",
       R"({"type":"REQACK","productKey":"p","deviceKey":"d","data":{"status":"succ"}})",
       R"({"type":"REQACK","productKey":"p","deviceKey":"d","ticket":"t"})",
       R"({"type":"REQACK","productKey":"p","deviceKey":"d","ticket":"t","data":{"status":"ok"}})"}) {
    const auto b = read_subscription_message(bad);
    CHECK_MESSAGE(b.what == subscription_message::kind::malformed, bad);
    CHECK_MESSAGE(!b.error.empty(), bad);
  }
}

TEST_CASE("acknowledgements join their tickets: delivered, failed, and no_ack at the deadline") {
  delivery_tracker t(1000);
  t.expect(0, "p", "a", "t0", 10);
  t.expect(1, "p", "b", "t1", 20);
  t.expect(2, "p", "c", "t2", 30);
  CHECK(t.waiting() == 3);
  CHECK(t.next_deadline_ms() == 1010);
  t.on_message(ack("p", "a", "t0", true, 777), 100);
  t.on_message(ack("p", "b", "t1", false), 200);
  CHECK(t.waiting() == 1);
  CHECK(t.next_deadline_ms() == 1030);  // the decided ones do not hold it back
  t.advance(1029);
  CHECK(t.waiting() == 1);
  t.advance(1030);
  CHECK(t.waiting() == 0);
  CHECK(t.next_deadline_ms() == 0);
  auto o = outcomes_of(t);
  CHECK(o.at(0) == delivery_outcome::delivered);
  CHECK(o.at(1) == delivery_outcome::delivery_failed);
  CHECK(o.at(2) == delivery_outcome::no_ack);
  CHECK(t.events()[0].ack_at_ms == 777);
  CHECK(t.events()[0].latency_ms == 90);
  CHECK(t.counts().delivered == 1);
  CHECK(t.counts().delivery_failed == 1);
  CHECK(t.counts().no_ack == 1);
  // After the wait: late, and nothing changes.
  t.on_message(ack("p", "c", "t2", true), 2000);
  CHECK(t.counts().late == 1);
  CHECK(t.counts().delivered == 1);
}

TEST_CASE(
    "early, duplicate, contradictory, mismatched and unmatched acknowledgements are counted") {
  delivery_tracker t(1000);
  flying(t, "p", "a");
  t.on_message(ack("p", "a", "t0", true), 5);   // before its answer
  t.on_message(ack("p", "a", "t0", true), 6);   // and again
  t.on_message(ack("p", "zz", "t9", true), 7);  // no request of zz on its way: not ours
  CHECK(t.counts().unmatched == 1);
  t.expect(0, "p", "a", "t0", 10);
  CHECK(t.waiting() == 0);
  CHECK(t.counts().early == 1);
  CHECK(t.counts().duplicates == 1);
  t.on_message(ack("p", "a", "t0", false), 20);  // contradicts: the first stays
  CHECK(t.counts().contradictory == 1);
  t.expect(1, "p", "b", "t1", 10);
  t.on_message(ack("p", "x", "t1", true), 30);  // t1 is b's, not x's
  CHECK(t.counts().mismatched == 1);
  CHECK(t.waiting() == 1);
  subscription_message other;
  other.what = subscription_message::kind::other;
  t.on_message(other, 40);
  subscription_message bad;
  bad.what = subscription_message::kind::malformed;
  t.on_message(bad, 40);
  CHECK(t.counts().other_messages == 1);
  CHECK(t.counts().malformed == 1);
  t.close();
  CHECK(t.counts().unmatched == 1);
  CHECK(t.waiting() == 0);
  auto o = outcomes_of(t);
  CHECK(o.size() == 2);
  CHECK(o.at(0) == delivery_outcome::delivered);
  CHECK(o.at(1) == delivery_outcome::no_ack);
}

TEST_CASE(
    "an early acknowledgement for another device is not applied, and the kept ones are bounded") {
  delivery_tracker t(1000, 2);
  flying(t, "p", "x");
  flying(t, "p", "a");
  t.on_message(ack("p", "x", "t0", true), 1);
  t.expect(0, "p", "a", "t0", 10);
  CHECK(t.counts().mismatched == 1);
  CHECK(t.waiting() == 1);
  for (auto d : {"1", "2", "3"}) flying(t, "p", d);
  CHECK(t.on_message(ack("p", "1", "u1", true), 1));
  CHECK(t.on_message(ack("p", "2", "u2", true), 1));
  CHECK_FALSE(t.on_message(ack("p", "3", "u3", true), 1));  // no room: unmatched now, said
  CHECK(t.counts().unmatched == 1);
  CHECK(t.counts().overflow == 1);
  t.close();
  CHECK(t.counts().unmatched == 3);
}

TEST_CASE("an early acknowledgement naming the wrong device does not stop the right one") {
  delivery_tracker t(1000);
  flying(t, "p", "a");
  flying(t, "p", "x");
  // A stray ack claims a's ticket for x first; then a's own comes, still early.
  CHECK(t.on_message(ack("p", "x", "t0", false), 1));
  CHECK(t.on_message(ack("p", "a", "t0", true, 55), 2));
  t.expect(0, "p", "a", "t0", 10);
  CHECK(t.waiting() == 0);
  CHECK(t.counts().mismatched == 1);
  CHECK(t.counts().early == 1);
  const auto o = outcomes_of(t);
  CHECK(o.at(0) == delivery_outcome::delivered);
  CHECK(t.events()[0].ack_at_ms == 55);
}

TEST_CASE("a flood of other tickets does not crowd out this run's early acknowledgements") {
  delivery_tracker t(1000, 100);
  flying(t, "p", "mine");
  for (int i = 0; i < 100'000; ++i)  // another application's devices on the same queue
    t.on_message(ack("q", fmt::format("other{}", i), fmt::format("o{}", i), true), 1);
  CHECK(t.counts().unmatched == 100'000);
  CHECK(t.counts().overflow == 0);
  CHECK(t.on_message(ack("p", "mine", "m1", true), 2));  // room still: kept
  t.expect(7, "p", "mine", "m1", 3);
  CHECK(outcomes_of(t).at(7) == delivery_outcome::delivered);
  // Once its result came, a device is no longer on its way.
  t.resolved(device_hash("p", "mine"));
  CHECK_FALSE(t.awaits(device_hash("p", "mine")));
  CHECK_FALSE(t.on_message(ack("p", "mine", "m2", true), 4));
  // An ack an earlier run kept (the journal) is kept again, on its way or not.
  delivery_tracker u(1000);
  u.keep_early(ack("p", "z", "z1", true));
  u.expect(3, "p", "z", "z1", 5);
  CHECK(outcomes_of(u).at(3) == delivery_outcome::delivered);
}

TEST_CASE("settled tickets (resume) turn later acknowledgements into duplicates") {
  delivery_tracker t(1000);
  t.settled(0, "p", "a", "t0", delivery_outcome::delivered);
  t.settled(1, "p", "b", "t1", delivery_outcome::no_ack);
  t.on_message(ack("p", "a", "t0", true), 1);
  t.on_message(ack("p", "b", "t1", true), 1);
  CHECK(t.counts().duplicates == 1);
  CHECK(t.counts().late == 1);
  CHECK(t.events().empty());
  CHECK(t.waiting() == 0);
}

TEST_CASE("shuffled, repeated and lost acknowledgements: each device exactly one outcome") {
  std::mt19937_64 rng(7);
  delivery_tracker t(5000);
  constexpr int n = 5000;
  struct planned {
    bool lost, ok;
  };
  std::vector<planned> plan(n);
  std::vector<subscription_message> msgs;
  for (int i = 0; i < n; ++i) {
    plan[i] = {rng() % 10 == 0, rng() % 7 != 0};
    if (plan[i].lost) continue;
    const int copies = rng() % 5 == 0 ? 3 : 1;
    for (int c = 0; c < copies; ++c)
      msgs.push_back(ack("p", fmt::format("d{}", i), fmt::format("t{}", i), plan[i].ok));
  }
  std::shuffle(msgs.begin(), msgs.end(), rng);
  for (int i = 0; i < n; ++i) flying(t, "p", fmt::format("d{}", i));  // every request written
  // Answers and acks interleaved: about a third of the acks come first.
  std::size_t next = 0;
  std::uint64_t now = 0;
  for (int i = 0; i < n; ++i) {
    t.expect(i, "p", fmt::format("d{}", i), fmt::format("t{}", i), ++now);
    for (int k = 0; k < 1 && next < msgs.size(); ++k) t.on_message(msgs[next++], now);
  }
  while (next < msgs.size()) t.on_message(msgs[next++], ++now);
  t.advance(now + 5000);
  const auto o = outcomes_of(t);
  REQUIRE(o.size() == n);
  for (int i = 0; i < n; ++i) {
    const auto want = plan[i].lost ? delivery_outcome::no_ack
                      : plan[i].ok ? delivery_outcome::delivered
                                   : delivery_outcome::delivery_failed;
    CHECK_MESSAGE(o.at(i) == want, "device ", i);
  }
  CHECK(t.counts().delivered + t.counts().delivery_failed + t.counts().no_ack == n);
  CHECK(t.counts().early > 0);
  CHECK(t.counts().duplicates > 0);
  CHECK(t.counts().unmatched == 0);
}

TEST_CASE("an acknowledgement kept for its ticket says so, and a settled ticket takes it") {
  delivery_tracker t(1000);
  flying(t, "p", "a");
  CHECK(t.on_message(ack("p", "a", "t0", true), 1));   // kept: the caller records it
  CHECK(!t.on_message(ack("p", "a", "t0", true), 1));  // a duplicate of a kept one
  t.expect(0, "p", "a", "t0", 5);
  CHECK(!t.on_message(ack("p", "a", "t0", true), 6));  // decided: a duplicate
  delivery_tracker u(1000);
  flying(u, "p", "b");
  CHECK(u.on_message(ack("p", "b", "t1", false), 1));
  u.settled(1, "p", "b", "t1", delivery_outcome::delivery_failed);  // --resume: decided before
  u.close();
  CHECK(u.counts().unmatched == 0);
  CHECK(u.events().empty());
}
