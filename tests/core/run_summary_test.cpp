// summary.json counters add up; exit codes follow PRODUCT.md.
#include <fleetcast/core/output/run_summary.hpp>

#include <doctest/doctest.h>
#include <simdjson.h>

using namespace fleetcast;

TEST_CASE("counts by status and reason add up to the records, and serialise") {
  run_summary s;
  s.name = "job \"one\"";
  device_result r;
  const outcome_reason reasons[] = {
      outcome_reason::accepted,  outcome_reason::accepted,       outcome_reason::device_failed,
      outcome_reason::duplicate, outcome_reason::invalid_record, outcome_reason::missing_in_answer};
  for (auto reason : reasons) {
    r.reason = reason;
    s.count(r);
  }
  s.requests = 3;
  s.elapsed_s = 2.0;
  s.batch_size = 500;
  CHECK(s.records == 6);
  CHECK(s.count_of(device_status::succeeded) == 2);
  CHECK(s.count_of(device_status::failed) == 2);
  CHECK(s.count_of(device_status::skipped) == 2);
  CHECK(s.devices_per_second() == doctest::Approx(3.0));
  CHECK(s.exit_code() == 1);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto json = s.to_json();
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["name"]) == "job \"one\"");
  CHECK(std::string_view(doc["state"]) == "completed");
  CHECK(int64_t(doc["devices"]) == 6);
  int64_t total = 0;
  for (auto [k, v] : simdjson::dom::object(doc["by_status"])) total += int64_t(v);
  CHECK(total == 6);
  total = 0;
  for (auto [k, v] : simdjson::dom::object(doc["by_reason"])) total += int64_t(v);
  CHECK(total == 6);
  CHECK(int64_t(doc["by_reason"]["duplicate"]) == 1);
  CHECK(int64_t(doc["batch_size"]) == 500);
}

TEST_CASE("exit codes: 0 all succeeded, 1 some not or failed, 3 aborted, 4 cancelled") {
  run_summary s;
  device_result r;
  r.reason = outcome_reason::accepted;
  s.count(r);
  CHECK(s.exit_code() == 0);
  s.state = job_state::aborted;
  CHECK(s.exit_code() == 3);
  s.state = job_state::cancelled;
  CHECK(s.exit_code() == 4);
  s.state = job_state::failed;  // failed on the way, even with every device a success so far
  CHECK(s.exit_code() == 1);
  run_summary empty_failed;  // a job that failed before any record: not "all succeeded"
  empty_failed.state = job_state::failed;
  CHECK(empty_failed.exit_code() == 1);
  s.state = job_state::completed;
  r.reason = outcome_reason::cancelled;
  s.count(r);
  CHECK(s.exit_code() == 1);
}

TEST_CASE("results.ndjson lines carry every field, JSON-escaped") {
  device_result r;
  r.index = 42;
  r.device = {"pk", "d\"k", "gp", "gd"};
  r.reason = outcome_reason::device_failed;
  r.code = 200;
  r.msg = "device\noffline";
  r.attempts = 2;
  r.uncertain = true;
  std::string line;
  append_result_line(line, r);
  CHECK(line.back() == '\n');
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(line).get(doc) == simdjson::SUCCESS);
  CHECK(int64_t(doc["index"]) == 42);
  CHECK(std::string_view(doc["deviceKey"]) == "d\"k");
  CHECK(std::string_view(doc["gatewayDeviceKey"]) == "gd");
  CHECK(std::string_view(doc["status"]) == "failed");
  CHECK(std::string_view(doc["reason"]) == "device_failed");
  CHECK(doc["ticket"].is_null());
  CHECK(int64_t(doc["code"]) == 200);
  CHECK(std::string_view(doc["msg"]) == "device\noffline");
  CHECK(int64_t(doc["attempts"]) == 2);
  CHECK(bool(doc["uncertain"]));

  line.clear();
  r = {};
  r.device = {"p", "d", "", ""};
  r.reason = outcome_reason::accepted;
  r.ticket = "123";
  append_result_line(line, r);
  REQUIRE(parser.parse(line).get(doc) == simdjson::SUCCESS);
  CHECK(doc["gatewayProductKey"].is_null());
  CHECK(doc["code"].is_null());
  CHECK(std::string_view(doc["ticket"]) == "123");
  CHECK(std::string_view(doc["status"]) == "succeeded");
  // Keys validation found plain are copied as they are: the same line.
  std::string copied;
  r.device.plain = true;
  append_result_line(copied, r);
  CHECK(copied == line);
}

TEST_CASE("a resumed run adds the counts of the run it continues") {
  run_summary earlier, now;
  device_result r;
  r.reason = outcome_reason::accepted;
  earlier.count(r);
  earlier.count(r);
  r.reason = outcome_reason::device_failed;
  now.count(r);
  now.add_counts(earlier);
  CHECK(now.records == 3);
  CHECK(now.count_of(device_status::succeeded) == 2);
  CHECK(now.count_of(outcome_reason::device_failed) == 1);
  CHECK(now.exit_code() == 1);
}

TEST_CASE("retries are the results' attempts beyond the first, runs are listed") {
  run_summary s;
  device_result r;
  r.reason = outcome_reason::accepted;
  for (std::uint32_t a : {1u, 3u, 0u, 2u}) {
    r.attempts = a;
    s.count(r);
  }
  CHECK(s.retries == 3);  // 0 + 2 + 0 + 1
  run_summary earlier;
  r.attempts = 5;
  earlier.count(r);
  s.add_counts(earlier);
  CHECK(s.retries == 7);
  s.runs = {{std::nullopt, 0, 1, 7}, {job_state::completed, 2.0, 4, 3}};
  s.elapsed_s = 2.0;
  CHECK(s.devices_per_second() == doctest::Approx(2.0));  // the last run's 4 devices in 2 s
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto json = s.to_json();
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(int64_t(doc["retries"]) == 7);
  simdjson::dom::array runs = doc["runs"];
  CHECK(runs.size() == 2);
  CHECK(std::string_view(runs.at(0)["state"]) == "interrupted");
  CHECK(runs.at(0)["elapsed_s"].is_null());
  CHECK(int64_t(runs.at(0)["requests"]) == 7);
  CHECK(std::string_view(runs.at(1)["state"]) == "completed");
  CHECK(doc["reason"].is_null());
}
