// The rollout's identity for --resume, and what a resume sends again.
#include "core/output/rollout_manifest.hpp"
#include "core/output/resume_plan.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

namespace {
rollout_manifest sample() {
  rollout_manifest m;
  m.devices_source = "devices \"eu\".csv";
  m.devices_sha256 = std::string(64, 'a');
  m.endpoint = "https://iot.example:8443/prefix";
  m.cmd.type = 2;
  m.cmd.data = "[{\"switch\":true}]";
  m.cmd.qos = 1;
  m.cmd.cache_time = 3600;
  return m;
}
}  // namespace

TEST_CASE("a rollout record reads back as written, any change is named") {
  const auto m = sample();
  std::string error;
  auto back = rollout_manifest::parse(m.to_json(), error);
  REQUIRE(back);
  CHECK(back->differences(m).empty());
  CHECK(back->devices_source == m.devices_source);
  CHECK(back->cmd.data == m.cmd.data);
  CHECK(back->cmd.cache_time == 3600);
  CHECK(!back->cmd.is_cover);

  auto changed = m;
  changed.cmd.data = "[{\"switch\":false}]";
  auto d = m.differences(changed);
  REQUIRE(d.size() == 1);
  CHECK(d[0].find("command.data") == 0);
  CHECK(d[0].find("switch") == std::string::npos);  // data by digest only

  changed = m;
  changed.endpoint = "https://other.example";
  d = m.differences(changed);
  REQUIRE(d.size() == 1);
  CHECK(d[0].find("other.example") != std::string::npos);

  changed = m;
  changed.devices_sha256 = std::string(64, 'b');
  changed.cmd.is_cover = 1;
  changed.cmd.qos.reset();
  d = m.differences(changed);
  CHECK(d.size() == 3);
  CHECK(d[0].find("the device list") == 0);

  changed = m;
  changed.devices_source = "../eu/devices.csv";  // the same bytes through another path
  CHECK(m.differences(changed).empty());

  changed = m;
  changed.devices_sha256.reset();  // a list that cannot be read twice
  CHECK(m.differences(changed).size() == 1);
  auto unreadable = rollout_manifest::parse(changed.to_json(), error);
  REQUIRE(unreadable);
  CHECK(!unreadable->devices_sha256);

  CHECK(!rollout_manifest::parse("{\"fleetcast_rollout\":2}", error));
  CHECK(!rollout_manifest::parse("not json", error));
  CHECK(error.find("not a rollout record") == 0);
}

TEST_CASE("a resume sends again what a stop skipped, and the failures named") {
  resume_plan p;
  CHECK(p.sends_again(outcome_reason::cancelled));
  CHECK(p.sends_again(outcome_reason::job_failed));
  CHECK(p.sends_again(outcome_reason::aborted));
  for (auto r :
       {outcome_reason::accepted, outcome_reason::device_failed, outcome_reason::transport_failed,
        outcome_reason::duplicate, outcome_reason::invalid_record,
        outcome_reason::missing_in_answer, outcome_reason::batch_rejected})
    CHECK(!p.sends_again(r));

  resume_plan defaults;
  CHECK(!defaults.retry_failed(""));
  CHECK(defaults.sends_again(outcome_reason::transport_failed));
  CHECK(defaults.sends_again(outcome_reason::missing_in_answer));
  CHECK(defaults.sends_again(outcome_reason::batch_rejected));
  CHECK(!defaults.sends_again(outcome_reason::device_failed));  // only when named
  CHECK(!defaults.sends_again(outcome_reason::accepted));

  resume_plan named;
  CHECK(!named.retry_failed("device_failed"));
  CHECK(named.sends_again(outcome_reason::device_failed));
  CHECK(!named.sends_again(outcome_reason::transport_failed));

  resume_plan bad;
  auto e = bad.retry_failed("transport_failed,acepted");
  REQUIRE(e);
  CHECK(e->find("\"acepted\"") != std::string::npos);
  e = bad.retry_failed("accepted");
  REQUIRE(e);
  CHECK(e->find("not a failure") != std::string::npos);
  e = bad.retry_failed("duplicate");
  REQUIRE(e);
}
