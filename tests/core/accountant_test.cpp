// Exactly one outcome per device of a batch, whatever the answer says.
#include "core/dispatch/accountant.hpp"
#include "tests/alloc_counter.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

using namespace fleetcast;

namespace {

struct owned_result {
  std::uint64_t index;
  std::string device_key;
  outcome_reason reason;
  std::string ticket;
  std::string msg;
  std::optional<std::int64_t> code;
  std::uint32_t attempts;
  bool uncertain;
};

struct collect : result_sink {
  std::vector<owned_result> results;
  void on_result(const device_result& r) override {
    results.push_back({r.index, std::string(r.device.device_key), r.reason, std::string(r.ticket),
                       std::string(r.msg), r.code, r.attempts, r.uncertain});
  }
};

batch make_batch(int n, std::uint64_t first_index = 0) {
  batch b;
  for (int i = 0; i < n; ++i) b.add(first_index + i, {"pk", fmt::format("d{}", i), "", ""});
  return b;
}

// Every batch device exactly once, keyed by input index.
std::map<std::uint64_t, owned_result> by_index(const collect& c, const batch& b) {
  std::map<std::uint64_t, owned_result> m;
  for (const auto& r : c.results) CHECK(m.emplace(r.index, r).second);
  CHECK(m.size() == b.size());
  for (std::size_t i = 0; i < b.size(); ++i) CHECK(m.count(b.index(i)) == 1);
  return m;
}

}  // namespace

TEST_CASE("answers in any order are matched to their devices") {
  batch b = make_batch(6, 1000);
  b.note_attempt();
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":{
    "failureList":[{"data":{"productKey":"pk","deviceKey":"d4"},"msg":"device offline"}],
    "successList":[{"data":{"productKey":"pk","deviceKey":"d5"},"ticket":"t5"},
                   {"data":{"productKey":"pk","deviceKey":"d0"},"ticket":"t0"},
                   {"data":{"productKey":"pk","deviceKey":"d2"},"ticket":"t2"},
                   {"data":{"productKey":"pk","deviceKey":"d1"},"ticket":"t1"},
                   {"data":{"productKey":"pk","deviceKey":"d3"},"ticket":"t3"}]}})"));
  accountant a;
  collect c;
  auto anomalies = a.account_answer(b, d.response(), c);
  auto m = by_index(c, b);
  for (int i : {0, 1, 2, 3, 5}) {
    CHECK(m[1000 + i].reason == outcome_reason::accepted);
    CHECK(m[1000 + i].ticket == fmt::format("t{}", i));
    CHECK(m[1000 + i].code == 200);
  }
  CHECK(m[1004].reason == outcome_reason::device_failed);
  CHECK(m[1004].msg == "device offline");
  CHECK(m[1004].attempts == 1);
  CHECK(anomalies.missing_devices == 0);
  CHECK(anomalies.unexpected_entries == 0);
  // Results come in batch order.
  for (std::size_t i = 0; i < c.results.size(); ++i) CHECK(c.results[i].index == 1000 + i);
}

TEST_CASE("devices in neither list fail with a clear reason, strangers and repeats are counted") {
  batch b = make_batch(4);  // not uncertain: what the accountant says is what is checked
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":{
    "successList":[{"data":{"productKey":"pk","deviceKey":"d0"},"ticket":"a"},
                   {"data":{"productKey":"pk","deviceKey":"d0"},"ticket":"again"},
                   {"data":{"productKey":"other","deviceKey":"d1"},"ticket":"wrong product"},
                   {"data":{"productKey":"pk","deviceKey":"stranger"},"ticket":"x"},
                   {"ticket":"no device"}],
    "failureList":[{"data":{"productKey":"pk","deviceKey":"d0"},"msg":"contradiction"},
                   {"data":{"productKey":"pk","deviceKey":"d2"},"msg":"device not found"}]}})"));
  accountant a;
  collect c;
  auto anomalies = a.account_answer(b, d.response(), c);
  auto m = by_index(c, b);
  CHECK(m[0].reason == outcome_reason::accepted);
  CHECK(m[0].ticket == "a");  // first mention wins
  CHECK(m[1].reason == outcome_reason::missing_in_answer);
  CHECK(m[1].msg.find("neither") != std::string::npos);
  CHECK(m[1].uncertain);  // the request ran; whether for this device, nobody said
  CHECK(m[2].reason == outcome_reason::device_failed);
  CHECK(m[3].reason == outcome_reason::missing_in_answer);
  CHECK(m[3].uncertain);
  CHECK(!m[0].uncertain);  // answered for: certain
  CHECK(!m[2].uncertain);
  // A batch already uncertain stays so whatever the answer says.
  batch u = make_batch(2);
  u.mark_uncertain();
  response_decoder du;
  REQUIRE(!du.decode(R"({"code":200,"data":{
    "successList":[{"data":{"productKey":"pk","deviceKey":"d0"},"ticket":"a"}],
    "failureList":[{"data":{"productKey":"pk","deviceKey":"d1"},"msg":"offline"}]}})"));
  collect cu;
  a.account_answer(u, du.response(), cu);
  for (auto& [i, r] : by_index(cu, u)) CHECK(r.uncertain);
  CHECK(anomalies.missing_devices == 2);
  CHECK(anomalies.unexpected_entries == 2);
  CHECK(anomalies.repeated_entries == 2);
  CHECK(anomalies.entries_without_device == 1);
}

TEST_CASE("an empty 200 answer fails every device as missing") {
  batch b = make_batch(3);
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":null})"));
  accountant a;
  collect c;
  CHECK(a.account_answer(b, d.response(), c).missing_devices == 3);
  auto m = by_index(c, b);
  for (auto& [i, r] : m) CHECK(r.reason == outcome_reason::missing_in_answer);
}

TEST_CASE("the same device key under two products are two devices") {
  batch b;
  b.add(0, {"pA", "same", "", ""});
  b.add(1, {"pB", "same", "", ""});
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":{
    "successList":[{"data":{"productKey":"pB","deviceKey":"same"},"ticket":"b"}],
    "failureList":[{"data":{"productKey":"pA","deviceKey":"same"},"msg":"offline"}]}})"));
  accountant a;
  collect c;
  a.account_answer(b, d.response(), c);
  auto m = by_index(c, b);
  CHECK(m[0].reason == outcome_reason::device_failed);
  CHECK(m[1].reason == outcome_reason::accepted);
  CHECK(m[1].ticket == "b");
}

TEST_CASE("a batch-level outcome reaches every device once") {
  batch b = make_batch(5, 10);
  b.note_attempt();
  b.note_attempt();
  collect c;
  accountant::account_all(b, outcome_reason::batch_rejected, 5041, "No permission", c);
  auto m = by_index(c, b);
  for (auto& [i, r] : m) {
    CHECK(r.reason == outcome_reason::batch_rejected);
    CHECK(r.code == 5041);
    CHECK(r.msg == "No permission");
    CHECK(r.attempts == 2);
  }
}

TEST_CASE("accounting a large batch by hash lookups, allocation-free once warm") {
  batch b;
  std::string answer = R"({"code":200,"data":{"successList":[)";
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back(fmt::format("86{:013}", i * 7919));
  for (int i = 0; i < 500; ++i) b.add(i, {"p1a2b3", keys[i], "", ""});
  // Answer in reverse order, every third device failing.
  std::string failures;
  bool first_success = true;
  for (int i = 499; i >= 0; --i) {
    const auto dev = fmt::format(R"({{"productKey":"p1a2b3","deviceKey":"{}"}})", keys[i]);
    if (i % 3 == 0) {
      failures += fmt::format(R"({}{{"data":{},"msg":"device offline"}})",
                              failures.empty() ? "" : ",", dev);
    } else {
      answer += fmt::format(R"({}{{"data":{},"ticket":"{}"}})", first_success ? "" : ",", dev, i);
      first_success = false;
    }
  }
  answer += "],\"failureList\":[" + failures + "]}}";
  response_decoder d;
  REQUIRE(!d.decode(answer));
  accountant a;
  struct counter : result_sink {
    std::size_t ok = 0, failed = 0, other = 0;
    void on_result(const device_result& r) override {
      if (r.reason == outcome_reason::accepted) {
        ++ok;
      } else if (r.reason == outcome_reason::device_failed) {
        ++failed;
      } else {
        ++other;
      }
    }
  } warm, measured;
  a.account_answer(b, d.response(), warm);
  test::counting_scope scope;
  a.account_answer(b, d.response(), measured);
  CHECK(scope.allocations() == 0);
  CHECK(measured.ok == 333);
  CHECK(measured.failed == 167);
  CHECK(measured.other == 0);
}
