// The merged PkdkResult is one valid API answer naming each device once.
#include "core/protocol/pkdk_result_merger.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <set>
#include <string>

using namespace fleetcast;

TEST_CASE("partial answers and device results merge into one API answer") {
  pkdk_result_merger m;

  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":{
      "successList":[{"data":{"productKey":"p","deviceKey":"a"},"ticket":"1"}],
      "failureList":[{"data":{"productKey":"p","deviceKey":"b"},"msg":"device offline"}]}})"));
  m.add(d.response());
  REQUIRE(!d.decode(R"({"code":200,"data":{
      "successList":[{"data":{"productKey":"p","deviceKey":"c","gatewayProductKey":"g",
                      "gatewayDeviceKey":"h"},"ticket":"3"}]}})"));
  m.add(d.response());

  device_result r;
  r.device = {"p", "e\"quoted\"", "", ""};
  r.reason = outcome_reason::accepted;
  r.ticket = "5";
  m.add(r);
  r.device = {"p", "f", "", ""};
  r.reason = outcome_reason::aborted;
  r.msg = "";
  m.add(r);
  r.device = {"p", "g", "", ""};
  r.reason = outcome_reason::transport_failed;
  r.msg = "connection reset";
  m.add(r);
  r.reason = outcome_reason::duplicate;  // not a separate device: left out
  m.add(r);
  r.reason = outcome_reason::invalid_record;
  m.add(r);

  CHECK(m.success_count() == 3);
  CHECK(m.failure_count() == 3);
  const std::string json = m.whole("merged by fleetcast");

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(int64_t(doc["code"]) == 200);
  simdjson::dom::array ok = doc["data"]["successList"];
  simdjson::dom::array bad = doc["data"]["failureList"];
  CHECK(ok.size() == 3);
  CHECK(bad.size() == 3);
  std::set<std::string> keys;
  for (auto e : ok) keys.insert(std::string(std::string_view(e["data"]["deviceKey"])));
  for (auto e : bad) keys.insert(std::string(std::string_view(e["data"]["deviceKey"])));
  CHECK(keys == std::set<std::string>{"a", "b", "c", "e\"quoted\"", "f", "g"});
  CHECK(std::string_view(ok.at(1)["data"]["gatewayDeviceKey"]) == "h");
  CHECK(std::string_view(bad.at(1)["msg"]) == "skipped: aborted");
  CHECK(std::string_view(bad.at(2)["msg"]) == "connection reset");

  // The merged answer decodes with the same decoder as a single answer.
  response_decoder again;
  REQUIRE(!again.decode(json));
  CHECK(again.response().successes.size() == 3);
  CHECK(again.response().failures.size() == 3);
}

TEST_CASE("an empty merge is a valid answer with empty lists") {
  pkdk_result_merger m;
  const std::string json = m.whole("merged by fleetcast");
  response_decoder d;
  REQUIRE(!d.decode(json));
  CHECK(d.response().ok());
  CHECK(d.response().successes.empty());
  CHECK(d.response().failures.empty());
}

TEST_CASE("entries taken as they grow continue one list: the parts joined are the whole") {
  pkdk_result_merger whole, parts;
  std::string ok = pkdk_result_merger::head("m"), bad;
  device_result r;
  for (int i = 0; i < 10; ++i) {
    const auto key = std::to_string(i);
    r.device = {"p", key, "", ""};
    r.reason = i % 3 ? outcome_reason::accepted : outcome_reason::device_failed;
    r.ticket = key;
    r.msg = "offline";
    whole.add(r);
    parts.add(r);
    if (i % 4 == 0) {  // drained now and then, as the result file's writer does
      ok += parts.successes();
      bad += parts.failures();
      parts.successes().clear();
      parts.failures().clear();
    }
  }
  ok += parts.successes();
  bad += parts.failures();
  const auto joined = ok + std::string(pkdk_result_merger::between()) + bad +
                      std::string(pkdk_result_merger::tail());
  CHECK(joined == whole.whole("m"));
  response_decoder d;
  REQUIRE(!d.decode(joined));
  CHECK(d.response().successes.size() == 6);
  CHECK(d.response().failures.size() == 4);
}
