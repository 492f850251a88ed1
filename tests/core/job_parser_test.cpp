// Job files: defaults, every field's checks, unknown fields, command codes,
// syntax errors with line and column, relative paths.
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/core/job/url.hpp>
#include <fleetcast/core/output/device_result.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <string>

using namespace fleetcast;

namespace {

const char* minimal = R"({
  "endpoint": "https://iot-api.acceleronix.io",
  "auth": {"token_file": "secrets/token"},
  "command": {"type": 2, "data": "[{\"switch\":true}]"},
  "devices": {"file": "devices.csv"}
})";

// A minimal job with one top-level member replaced or added (raw JSON).
std::string with(const std::string& key, const std::string& value) {
  std::string base = minimal;
  const std::string needle = "\"" + key + "\":";
  auto pos = base.find(needle);
  if (pos == std::string::npos) {
    base.insert(1, "\n  " + needle + " " + value + ",");
  } else {
    int depth = 0;
    auto end = pos + needle.size();
    for (; end < base.size(); ++end) {
      char c = base[end];
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      }
      if (c == ',' && depth == 0) break;
    }
    base.replace(pos, end - pos, needle + " " + value);
  }
  return base;
}

job_parse_result parse(const std::string& text) {
  return parse_job(text, "/jobs/eu/switch.json");
}

// The single error of a job text (fails the test if there is not exactly one).
job_error only_error(const std::string& text) {
  auto r = parse(text);
  CAPTURE(text);
  REQUIRE(r.errors.size() == 1);
  CHECK(!r.job);
  return r.errors[0];
}

}  // namespace

TEST_CASE("a minimal job gets every documented default") {
  auto r = parse(minimal);
  REQUIRE(r.errors.empty());
  REQUIRE(r.job);
  const job& j = *r.job;
  CHECK(j.name == "switch");
  CHECK(j.endpoint.tls);
  CHECK(j.endpoint.host == "iot-api.acceleronix.io");
  CHECK(j.endpoint.port == 443);
  CHECK(j.endpoint.target() == "/v2/binding/enduserapi/batchControlDevice");
  CHECK(j.auth.kind == auth_config::source::token_file);
  CHECK(j.auth.token_file == "/jobs/eu/secrets/token");
  CHECK(j.tls.verify);
  CHECK(!j.tls.ca_file);
  CHECK(j.cmd.type == 2);
  CHECK(!j.cmd.qos);
  CHECK(j.devices.file == "/jobs/eu/devices.csv");
  CHECK(j.devices.format == device_format::csv);
  CHECK(j.batch.auto_size);
  CHECK(j.batch.max_devices == 500);
  CHECK(j.rate.requests_per_second == 20);
  CHECK(j.rate.devices_per_second == 0);
  CHECK(j.rate.burst == 5);
  CHECK(j.connections == 4);
  CHECK(j.pipeline_depth == 1);
  CHECK(j.timeouts.connect_ms == 5000);
  CHECK(j.timeouts.request_ms == 30000);
  CHECK(j.retry.max_attempts == 5);
  CHECK(j.retry.base_delay_ms == 200);
  CHECK(j.retry.max_delay_ms == 30000);
  CHECK(j.retry.unknown_outcome == unknown_outcome_policy::retry);
  CHECK(j.rollout.canary_devices == 0);
  CHECK(j.rollout.abort_failure_ratio == 1.0);
  CHECK(j.rollout.abort_min_devices == 0);
  CHECK(j.output_dir == "/jobs/eu/out/switch");
}

TEST_CASE("PRODUCT.md's full example parses with its values") {
  const char* full = R"({
    "name": "switch-on-eu",
    "endpoint": "https://iot-api.acceleronix.io",
    "auth": {"token_file": "secrets/token"},
    "tls": {"verify": true, "ca_file": null},
    "command": {"type": 2, "data": "[{\"switch\":true}]", "qos": 1,
                "isCache": 1, "cacheTime": 3600, "isCover": 1},
    "devices": {"file": "devices.csv"},
    "batch": {"max_devices": "auto"},
    "rate": {"requests_per_second": 20, "devices_per_second": 0, "burst": 5},
    "connections": 4,
    "pipeline_depth": 1,
    "timeouts": {"connect_ms": 5000, "request_ms": 30000},
    "retry": {"max_attempts": 5, "base_delay_ms": 200, "max_delay_ms": 30000,
              "unknown_outcome": "retry"},
    "rollout": {"canary_devices": 0, "abort_failure_ratio": 1.0, "abort_min_devices": 0},
    "output": {"dir": "out/switch-on-eu"}
  })";
  auto r = parse(full);
  REQUIRE(r.errors.empty());
  CHECK(r.job->name == "switch-on-eu");
  CHECK(r.job->cmd.cache_time == 3600);
  CHECK(r.job->cmd.is_cover == 1);
  CHECK(r.job->output_dir == "/jobs/eu/out/switch-on-eu");
}

TEST_CASE("values other than the defaults are read") {
  auto r = parse(with("batch", R"({"max_devices": 200})"));
  REQUIRE(r.job);
  CHECK(!r.job->batch.auto_size);
  CHECK(r.job->batch.max_devices == 200);
  r = parse(
      with("rate", R"({"requests_per_second": 2.5, "devices_per_second": 1000, "burst": 1})"));
  REQUIRE(r.job);
  CHECK(r.job->rate.requests_per_second == 2.5);
  CHECK(r.job->rate.devices_per_second == 1000);
  r = parse(with("retry", R"({"unknown_outcome": "fail", "max_attempts": 1})"));
  REQUIRE(r.job);
  CHECK(r.job->retry.unknown_outcome == unknown_outcome_policy::fail);
  r = parse(with("tls", R"({"verify": false, "ca_file": "/etc/ca.pem"})"));
  REQUIRE(r.job);
  CHECK(!r.job->tls.verify);
  CHECK(r.job->tls.ca_file == "/etc/ca.pem");
  r = parse(with("output", R"({"dir": "../results"})"));
  REQUIRE(r.job);
  CHECK(r.job->output_dir == "/jobs/results");
  r = parse(with("auth", R"({"token_command": ["vault", "read", "-field=token", "x"]})"));
  REQUIRE(r.job);
  CHECK(r.job->auth.kind == auth_config::source::token_command);
  CHECK(r.job->auth.token_command.size() == 4);
  r = parse(with("auth", R"({"token_env": "FLEETCAST_TOKEN"})"));
  REQUIRE(r.job);
  CHECK(r.job->auth.token_env == "FLEETCAST_TOKEN");
}

TEST_CASE("unknown fields are errors that name the field, at every level") {
  auto e = only_error(with("connectoins", "4"));
  CHECK(e.field == "connectoins");
  CHECK(e.message.find("unknown field") != std::string::npos);
  // With the key's line and column, and the field it is probably a typo of.
  CHECK(e.describe("job.json") ==
        "job.json:2:3: connectoins: unknown field (did you mean connections?)");
  // Nothing close: the fields known there.
  CHECK(only_error(with("zzz", "4"))
            .message.starts_with("unknown field (known here: name, endpoint"));
  CHECK(only_error(with("rate", R"({"requests_per_secnd": 5})")).field ==
        "rate.requests_per_secnd");
  CHECK(only_error(with("command", R"({"type": 2, "data": "[]", "iscache": 1})")).field ==
        "command.iscache");
  CHECK(only_error(with("devices", R"({"file": "d.csv", "fromat": "csv"})")).field ==
        "devices.fromat");
  CHECK(only_error(with("retry", R"({"max_attempts": 3, "jitter": true})")).field ==
        "retry.jitter");
}

TEST_CASE("required fields") {
  for (const char* key : {"endpoint", "auth", "command", "devices"}) {
    std::string text = minimal;
    auto pos = text.find(std::string("\"") + key + "\"");
    auto end = text.find('\n', pos);
    text.erase(pos, end - pos + 1);
    if (std::string(key) == "devices") {  // keep the JSON valid: drop the trailing comma
      auto comma = text.rfind(',');
      text.erase(comma, 1);
    }
    auto r = parse(text);
    CAPTURE(text);
    REQUIRE(!r.errors.empty());
    bool named = false;
    for (auto& err : r.errors) named |= err.field == key && err.message == "is required";
    CHECK(named);
  }
}

TEST_CASE("wrong types and out-of-range values name the field") {
  CHECK(only_error(with("connections", "\"four\"")).message == "must be an integer, not a string");
  CHECK(only_error(with("connections", "0")).field == "connections");
  CHECK(only_error(with("connections", "1.5")).message.find("integer") != std::string::npos);
  CHECK(only_error(with("pipeline_depth", "65")).field == "pipeline_depth");
  CHECK(only_error(with("batch", R"({"max_devices": 0})")).field == "batch.max_devices");
  CHECK(only_error(with("batch", R"({"max_devices": "big"})")).field == "batch.max_devices");
  CHECK(only_error(with("rate", R"({"requests_per_second": -1})")).field ==
        "rate.requests_per_second");
  CHECK(only_error(with("rate", R"({"burst": 0})")).field == "rate.burst");
  CHECK(only_error(with("timeouts", R"({"connect_ms": 0})")).field == "timeouts.connect_ms");
  CHECK(only_error(with("retry", R"({"base_delay_ms": 500, "max_delay_ms": 100})")).field ==
        "retry.max_delay_ms");
  CHECK(only_error(with("retry", R"({"unknown_outcome": "maybe"})")).field ==
        "retry.unknown_outcome");
  CHECK(only_error(with("rollout", R"({"abort_failure_ratio": 1.5})")).field ==
        "rollout.abort_failure_ratio");
  CHECK(only_error(with("tls", R"({"verify": "yes"})")).field == "tls.verify");
  CHECK(only_error(with("name", R"("../etc")")).field == "name");
  CHECK(only_error(with("rate", "[]")).message == "must be an object, not an array");
  CHECK(only_error(with("connections", "4, \"connections\": 5")).message == "given more than once");
}

TEST_CASE("endpoints") {
  endpoint_config e;
  CHECK(!parse_endpoint("https://h.example:8443/api/", e));
  CHECK(e.host == "h.example");
  CHECK(e.port == 8443);
  CHECK(e.target() == "/api/v2/binding/enduserapi/batchControlDevice");
  CHECK(!parse_endpoint("http://127.0.0.1", e));
  CHECK(!e.tls);
  CHECK(e.port == 80);
  CHECK(!parse_endpoint("https://[::1]:9000", e));
  CHECK(e.host == "::1");
  CHECK(e.port == 9000);
  CHECK(parse_endpoint("ftp://x", e));
  CHECK(parse_endpoint("https://", e));
  CHECK(parse_endpoint("https://h:0", e));
  CHECK(parse_endpoint("https://h:70000", e));
  CHECK(parse_endpoint("https://h:", e));
  CHECK(parse_endpoint("https://user@h", e));
  CHECK(parse_endpoint("https://h/?x=1", e));
  CHECK(parse_endpoint("https://[::1", e));
  auto err = only_error(with("endpoint", R"("iot-api.acceleronix.io")"));
  CHECK(err.field == "endpoint");
  CHECK(err.message.find("https://") != std::string::npos);
}

TEST_CASE("endpoints: the whole API URL pasted, and plain http:// beyond loopback") {
  endpoint_config e;
  auto pasted = parse_endpoint("https://h.example:8443/api/v2/binding/enduserapi/batchControlDevice", e);
  REQUIRE(pasted);
  CHECK(pasted->find("give the address it starts from, \"https://h.example:8443/api\"") !=
        std::string::npos);
  pasted = parse_endpoint("https://h.example/V2/Binding/EndUserApi/", e);  // any case, no prefix
  REQUIRE(pasted);
  CHECK(pasted->find("\"https://h.example\"") != std::string::npos);
  CHECK(!parse_endpoint("https://h.example/v2-gateway", e));  // a prefix of its own is fine

  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST."})
    CHECK_MESSAGE(is_loopback_host(host), host);
  for (const char* host : {"128.0.0.1", "127.0.0.1.example", "127.0.0", "127.0.0.256", "::2",
                           "localhost.example", "10.0.0.1", ""})
    CHECK_MESSAGE(!is_loopback_host(host), host);

  auto err = only_error(with("endpoint", R"("http://iot.example.com")"));
  CHECK(err.field == "endpoint");
  CHECK(err.message.find("tls.allow_plain_http") != std::string::npos);
  CHECK(parse_job(R"({"endpoint": "http://iot.example.com", "tls": {"allow_plain_http": true},
      "auth": {"token_file": "t"}, "command": {"type": 2, "data": "[]"},
      "devices": {"file": "d.csv"}})",
                  "job.json")
            .job);
  CHECK(parse_job(R"({"endpoint": "http://[::1]:9", "auth": {"token_file": "t"},
      "command": {"type": 2, "data": "[]"}, "devices": {"file": "d.csv"}})",
                  "job.json")
            .job);
}

TEST_CASE("the time window against the clock: ended refused, far ahead said") {
  job j;
  const std::int64_t now = 1'800'000'000;
  CHECK_FALSE(check_window(j, now).error);  // no window
  j.rollout.not_after = now - 7200 - 60;
  auto v = check_window(j, now);
  REQUIRE(v.error);
  CHECK(v.error->field == "rollout.not_after");
  CHECK(v.error->message.find("(2 h 1 min ago): a run would send nothing") != std::string::npos);
  j.rollout.not_after = now;  // ends now: nothing could be sent either
  CHECK(check_window(j, now).error);
  j.rollout.not_after = now + 1;
  CHECK_FALSE(check_window(j, now).error);
  j.rollout.not_before = now + 24 * 3600;  // a day ahead: not said
  j.rollout.not_after = std::nullopt;
  CHECK(check_window(j, now).notice.empty());
  j.rollout.not_before = now + 3 * 86400 + 5 * 3600;
  v = check_window(j, now);
  CHECK_FALSE(v.error);
  CHECK(v.notice.find("in 3 days 5 h: a run waits until then") != std::string::npos);
}

TEST_CASE("auth takes exactly one token source") {
  CHECK(only_error(with("auth", "{}")).message.find("needs one of") != std::string::npos);
  CHECK(only_error(with("auth", R"({"token_file": "a", "token_env": "B"})"))
            .message.find("exactly one") != std::string::npos);
  CHECK(only_error(with("auth", R"({"token_command": []})")).field == "auth.token_command");
  CHECK(only_error(with("auth", R"({"token": "Bearer abc"})")).field == "auth.token");
}

TEST_CASE("a command that breaks a rule is refused with the rule's code") {
  struct rule {
    const char* command;
    const char* field;
    int code;
  } rules[] = {
      {R"({"data": "x"})", "command.type", 5070},
      {R"({"type": 4, "data": "x"})", "command.type", 5071},
      {R"({"type": 1, "data": "AB"})", "command.dataFormat", 5072},
      {R"({"type": 1, "data": "AB", "dataFormat": 3})", "command.dataFormat", 5073},
      {R"({"type": 2})", "command.data", 5074},
      {R"({"type": 2, "data": ""})", "command.data", 5074},
      {R"({"type": 2, "data": "[]", "isCache": 1})", "command.cacheTime", 5328},
      {R"({"type": 2, "data": "[]", "isCache": 1, "cacheTime": 0})", "command.cacheTime", 5329},
      {R"({"type": 2, "data": "[]", "isCache": 1, "cacheTime": 7776001})", "command.cacheTime",
       5329},
      {R"({"type": 2, "data": "[]", "isCache": 3})", "command.isCache", 5330},
      {R"({"type": 2, "data": "[]", "isCover": 0})", "command.isCover", 5331},
  };
  for (const auto& r : rules) {
    auto e = only_error(with("command", r.command));
    CHECK(e.field == r.field);
    CHECK(e.code == r.code);
    CHECK(e.describe("j.json").find("(code " + std::to_string(r.code) + ")") != std::string::npos);
  }
  std::string long_data(4097, 'a');
  auto e =
      only_error(with("command", R"({"type": 1, "dataFormat": 2, "data": ")" + long_data + "\"}"));
  CHECK(e.code == 5075);
  auto q = only_error(with("command", R"({"type": 2, "data": "[]", "qos": 2})"));
  CHECK(q.field == "command.qos");
  CHECK(!q.code);  // fleetcast's own rule: no platform code
  CHECK(only_error(with("command", R"({"type": 2, "data": "[{"})")).field == "command.data");
  CHECK(only_error(with("command", R"({"type": 1, "dataFormat": 1, "data": "ABC"})")).field ==
        "command.data");
  CHECK(only_error(with("command", R"({"type": "2", "data": "[]"})")).message ==
        "must be an integer, not a string");
}

TEST_CASE("property data may be written as JSON, it is sent as the string the API expects") {
  auto r = parse(with("command", R"({"type": 2, "data": [{"switch": true}, {"level": 80}]})"));
  REQUIRE(r.job);
  CHECK(r.job->cmd.data == R"([{"switch":true},{"level":80}])");
}

TEST_CASE("devices: file formats, an explicit format, inline arrays") {
  auto r = parse(with("devices", R"({"file": "fleet.ndjson"})"));
  REQUIRE(r.job);
  CHECK(r.job->devices.format == device_format::ndjson);
  r = parse(with("devices", R"({"file": "fleet.JSONL"})"));
  REQUIRE(r.job);
  CHECK(r.job->devices.format == device_format::ndjson);
  r = parse(with("devices", R"({"file": "fleet.json"})"));
  REQUIRE(r.job);
  CHECK(r.job->devices.format == device_format::json_array);
  r = parse(with("devices", R"({"file": "fleet.txt", "format": "csv"})"));
  REQUIRE(r.job);
  CHECK(r.job->devices.format == device_format::csv);
  CHECK(only_error(with("devices", R"({"file": "fleet.txt"})")).field == "devices.file");
  CHECK(only_error(with("devices", R"({"file": "f.csv", "format": "xml"})")).field ==
        "devices.format");
  r = parse(with("devices", R"([{"productKey": "p", "deviceKey": "d"}])"));
  REQUIRE(r.job);
  CHECK(!r.job->devices.file);
  CHECK(r.job->devices.inline_json == R"([{"productKey":"p","deviceKey":"d"}])");
  auto e = only_error(with("devices", "[]"));
  CHECK(e.code == 5311);
  CHECK(only_error(with("devices", "{}")).field == "devices.file");
}

TEST_CASE("all problems of a job are reported together") {
  std::string text = with("connections", "0");
  text.insert(1, R"("pipeline_depth": 0, "extra": 1,)");
  auto r = parse(text);
  REQUIRE(r.errors.size() == 3);
  CHECK(!r.job);
}

TEST_CASE("malformed JSON is reported with line and column") {
  auto e = only_error(
      "{\n  \"endpoint\": \"https://x\",\n  \"auth\": {\"token_file\": \"t\"}\n  \"command\": "
      "{}\n}");
  CHECK(e.line == 4);
  CHECK(e.column == 3);
  CHECK(e.message.find("expected ',' or '}'") != std::string::npos);
  CHECK(e.describe("job.json").starts_with("job.json:4:3: invalid JSON"));
  CHECK(only_error("").message.find("end of input") != std::string::npos);
  CHECK(only_error("[1,2]").message == "must be an object, not an array");
}

TEST_CASE("ISO 8601 times with an offset") {
  CHECK(parse_iso8601("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_iso8601("2026-11-26T12:00:00Z") == 1795694400);
  CHECK(parse_iso8601("2026-11-26T13:00:00+01:00") == 1795694400);
  CHECK(parse_iso8601("2026-11-26T07:30:00-04:30") == 1795694400);
  CHECK(parse_iso8601("2026-11-26T12:00:00.250Z") == 1795694400);
  CHECK(parse_iso8601("2024-02-29T00:00:00Z") == 1709164800);
  CHECK(!parse_iso8601("2026-11-26T12:00:00"));  // no offset: ambiguous
  CHECK(!parse_iso8601("2025-02-29T00:00:00Z"));
  CHECK(!parse_iso8601("2026-13-01T00:00:00Z"));
  CHECK(!parse_iso8601("2026-11-26 12:00Z"));
  CHECK(!parse_iso8601("tomorrow"));
}

TEST_CASE("rollout safety fields: ramp, abort_on, time window") {
  auto r =
      parse(with("rollout", R"({"canary_devices":100,"canary_wait_s":30,"abort_failure_ratio":0.05,
      "abort_min_devices":1000,"abort_on":["device_failed","transport_failed"],
      "ramp":{"start_rps":2,"factor":1.5,"every_devices":500},
      "not_before":"2026-11-26T22:00:00+01:00","not_after":"2026-11-27T06:00:00+01:00"})"));
  REQUIRE(r.job);
  const auto& ro = r.job->rollout;
  CHECK(ro.canary_wait_s == 30);
  CHECK(ro.abort_on == ((1u << static_cast<unsigned>(outcome_reason::device_failed)) |
                        (1u << static_cast<unsigned>(outcome_reason::transport_failed))));
  CHECK(ro.ramp.start_rps == 2);
  CHECK(ro.ramp.every_devices == 500);
  CHECK(*ro.not_after - *ro.not_before == 8 * 3600);
  CHECK(only_error(with("rollout", R"({"abort_on":["device_failed","accepted"]})")).field ==
        "rollout.abort_on");
  CHECK(only_error(with("rollout", R"({"ramp":{"factor":2}})")).field == "rollout.ramp.start_rps");
  CHECK(only_error(with("rollout", R"({"not_before":"22:00"})")).field == "rollout.not_before");
  CHECK(only_error(
            with("rollout",
                 R"({"not_before":"2026-11-27T00:00:00Z","not_after":"2026-11-26T00:00:00Z"})"))
            .field == "rollout.not_after");
  std::string unlimited = with("rate", R"({"requests_per_second":0})");
  auto pos = unlimited.find("\"endpoint\"");
  unlimited.insert(pos, R"("rollout":{"ramp":{"start_rps":1}}, )");
  CHECK(only_error(unlimited).field == "rollout.ramp");
}

TEST_CASE("a job's default name comes from its file name, made safe") {
  CHECK(job_name_from_stem("switch-on_eu.v2") == "switch-on_eu.v2");
  CHECK(job_name_from_stem("switch on/eu?") == "switch_on_eu_");
  CHECK(job_name_from_stem(std::string(200, 'a')).size() == 128);
  auto parsed = parse_job(
      R"({"endpoint":"https://h","auth":{"token_env":"T"},"command":{"type":2,"data":"[]"},"devices":[{"productKey":"p","deviceKey":"d"}]})",
      "/x/my job.json");
  REQUIRE(parsed.job);
  CHECK(parsed.job->name == "my_job");
}

TEST_CASE("ISO 8601 times print back in UTC") {
  const auto t = parse_iso8601("2026-11-26T13:00:05+01:00");
  REQUIRE(t);
  CHECK(format_iso8601_utc(*t) == "2026-11-26T12:00:05Z");
  CHECK(format_iso8601_utc(*t, 7) == "2026-11-26T12:00:05.007Z");
  CHECK(parse_iso8601(format_iso8601_utc(*t)) == t);
}

TEST_CASE("a job with six mistakes shows all six in one round, each where it is") {
  const char* text = R"({"endpoint": "ftp://iot.example.com:99999",
 "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[]", "qos": "1", "isCache": 1, "cacheTime": 99999999, "isCover": 1},
 "devices": {"file": "devices.csv"},
 "conections": 4,
 "rate": {"requests_per_second": -1}}
)";
  const auto r = parse_job(text, "job.json");
  REQUIRE_FALSE(r.job);
  std::vector<std::string> said;
  for (const auto& e : r.errors) said.push_back(e.describe("job.json"));
  const std::vector<std::string> want{
      "job.json:5:2: conections: unknown field (did you mean connections?)",
      "job.json:1:2: endpoint: \"ftp://iot.example.com:99999\" must start with https:// (or "
      "http:// for a loopback rehearsal); has a port that is not a number 1-65535",
      "job.json:3:39: command.qos: must be an integer, not a string",
      "job.json:3:65: command.cacheTime: cacheTime 99999999 is outside 1..7776000 seconds (code "
      "5329)",
      "job.json:6:11: rate.requests_per_second: -1 is outside 0..1000000",
  };
  CHECK(said == want);  // the scheme and the port are two mistakes of one field
}

TEST_CASE("validate(): a job built in code meets the job file's rules, error for error") {
  auto base = parse_job(minimal, "/jobs/job.json");
  REQUIRE(base.job);
  CHECK(validate(*base.job).empty());
  struct mistake {
    std::string key, value;  // in the job file
    std::function<void(job&)> in_code;
  };
  const std::vector<mistake> cases = {
      {"connections", "0", [](job& j) { j.connections = 0; }},
      {"pipeline_depth", "65", [](job& j) { j.pipeline_depth = 65; }},
      {"max_answer_bytes", "100", [](job& j) { j.max_answer_bytes = 100; }},
      {"rate", R"({"requests_per_second": 2e6})", [](job& j) { j.rate.requests_per_second = 2e6; }},
      {"rate", R"({"burst": 0.5})", [](job& j) { j.rate.burst = 0.5; }},
      {"batch", R"({"max_devices": 200000})", [](job& j) { j.batch.max_devices = 200000; }},
      {"timeouts", R"({"request_ms": 0})", [](job& j) { j.timeouts.request_ms = 0; }},
      {"retry", R"({"base_delay_ms": 500, "max_delay_ms": 100})",
       [](job& j) {
         j.retry.base_delay_ms = 500;
         j.retry.max_delay_ms = 100;
       }},
      {"retry", R"({"max_attempts": 0})", [](job& j) { j.retry.max_attempts = 0; }},
      {"rollout", R"({"abort_failure_ratio": 1.5})",
       [](job& j) { j.rollout.abort_failure_ratio = 1.5; }},
      {"rollout", R"({"ramp": {"start_rps": 5}})",
       [](job& j) {
         j.rollout.ramp.start_rps = 5;
         j.rate.requests_per_second = 0;
       }},
      {"rollout", R"({"not_before": "2026-11-26T22:00:00Z", "not_after": "2026-11-26T21:00:00Z"})",
       [](job& j) {
         j.rollout.not_before = 1'764'194'400;
         j.rollout.not_after = 1'764'190'800;
       }},
      {"name", R"("bad name")", [](job& j) { j.name = "bad name"; }},
      {"proxy", R"("ftp://proxy:21")", [](job& j) { j.proxy = "ftp://proxy:21"; }},
      {"endpoint", R"("ftp://x")", [](job& j) { j.endpoint.url = "ftp://x"; }},
      {"command", R"({"type": 2, "data": "[]", "isCache": 1, "qos": 3})",
       [](job& j) {
         j.cmd.data = "[]";
         j.cmd.is_cache = 1;
         j.cmd.qos = 3;
       }},
      {"command", R"({"type": 9, "data": "x"})",
       [](job& j) {
         j.cmd.type = 9;
         j.cmd.data = "x";
       }},
  };
  for (const auto& m : cases) {
    CAPTURE(m.key);
    CAPTURE(m.value);
    std::string text = with(m.key, m.value);
    if (m.value.find("ramp") != std::string::npos)  // and no rate to ramp up to
      text.insert(1, R"("rate": {"requests_per_second": 0},)");
    const auto parsed = parse_job(text, "/jobs/job.json");
    REQUIRE(!parsed.errors.empty());
    job j = *base.job;
    m.in_code(j);
    const auto errors = validate(j);
    REQUIRE(errors.size() == parsed.errors.size());
    for (std::size_t i = 0; i < errors.size(); ++i) {
      CHECK(errors[i].field == parsed.errors[i].field);
      CHECK(errors[i].message == parsed.errors[i].message);
      CHECK(errors[i].code == parsed.errors[i].code);
    }
  }
  // In code only: parts of the endpoint that disagree with its url.
  job j = *base.job;
  j.endpoint.port = 8443;
  REQUIRE(validate(j).size() == 1);
  CHECK(validate(j)[0].field == "endpoint");
}

TEST_CASE("acks: an NDJSON stream or the AMQP subscription, with the documented defaults") {
  auto r = parse(minimal);
  REQUIRE(r.job);
  CHECK(!r.job->acks.enabled());
  r = parse(with("acks", R"({"ndjson": "acks/stream.ndjson", "timeout_s": 30})"));
  REQUIRE(r.job);
  CHECK(r.job->acks.kind == acks_config::source::ndjson);
  CHECK(r.job->acks.ndjson == "/jobs/eu/acks/stream.ndjson");
  CHECK(r.job->acks.timeout_s == 30);
  r = parse(with("acks", R"({"amqp": {"url": "amqps://iot-amqp.acceleronix.io:5671/quec-open",
      "access_key_file": "secrets/ak", "access_secret_env": "FLEETCAST_AMQP_SECRET",
      "queue": "a.12345.fleetcast"}})"));
  REQUIRE(r.job);
  const auto& q = r.job->acks.amqp;
  CHECK(r.job->acks.kind == acks_config::source::amqp);
  CHECK(r.job->acks.timeout_s == 600);
  CHECK(q.host == "iot-amqp.acceleronix.io");
  CHECK(q.port == 5671);
  CHECK(q.vhost == "quec-open");
  CHECK(q.hostname == "vhost:quec-open");
  CHECK(q.source == "/amq/queue/a.12345.fleetcast");
  CHECK(q.access_key_file == "/jobs/eu/secrets/ak");
  CHECK(q.access_secret_env == "FLEETCAST_AMQP_SECRET");
  CHECK(q.idle_timeout_ms == 30000);
  // RabbitMQ 4's address form, another hostname, no port: the default.
  r = parse(with("acks", R"({"amqp": {"url": "amqps://iot-amqp.quectelcn.com/quec-open",
      "access_key_env": "K", "access_secret_env": "S", "queue": "a.1.q",
      "source": "/queues/a.1.q", "hostname": "quec-open", "idle_timeout_ms": 60000}})"));
  REQUIRE(r.job);
  CHECK(r.job->acks.amqp.port == 5671);
  CHECK(r.job->acks.amqp.source == "/queues/a.1.q");
  CHECK(r.job->acks.amqp.hostname == "quec-open");
}

TEST_CASE("acks: each mistake named where it is") {
  const auto error_of = [](const std::string& acks) {
    const auto e = only_error(with("acks", acks));
    return e.field + ": " + e.message;
  };
  CHECK(error_of(R"({"timeout_s": 5})").find("exactly one of ndjson, amqp") != std::string::npos);
  CHECK(error_of(R"({"ndjson": "a", "amqp": {}})").find("exactly one of ndjson, amqp") !=
        std::string::npos);
  CHECK(error_of(R"({"ndjson": "a", "timeout_s": 0})").find("acks.timeout_s") != std::string::npos);
  CHECK(error_of(R"({"ndjson": "a", "timeot_s": 5})").find("did you mean timeout_s") !=
        std::string::npos);
  const std::string good_secrets = R"("access_key_env": "K", "access_secret_env": "S")";
  CHECK(
      error_of(R"({"amqp": {"url": "amqp://h/quec-open", "queue": "a.1.q", )" + good_secrets + "}}")
          .find("must be amqps://") != std::string::npos);
  CHECK(error_of(R"({"amqp": {"url": "amqps://h", )" + good_secrets + "}}").find("needs queue") !=
        std::string::npos);
  CHECK(error_of(R"({"amqp": {"url": "amqps://h", "queue": "a b", )" + good_secrets + "}}")
            .find("acks.amqp.queue") != std::string::npos);
  CHECK(error_of(R"({"amqp": {"url": "amqps://h", "queue": "q", "access_key_env": "K"}})")
            .find("exactly one of access_secret_file, access_secret_env") != std::string::npos);
  CHECK(error_of(R"({"amqp": {"url": "amqps://h", "queue": "q", "idle_timeout_ms": 1000, )" +
                 good_secrets + "}}")
            .find("acks.amqp.idle_timeout_ms: 1000 is outside 30000..60000") != std::string::npos);
}

TEST_CASE("auth.refresh_token_file or _env renews a token file or variable") {
  auto r = parse(
      with("auth", R"({"token_file": "secrets/token", "refresh_token_file": "secrets/refresh"})"));
  REQUIRE(r.job);
  CHECK(r.job->auth.refresh_token_file == "/jobs/eu/secrets/refresh");
  CHECK(r.job->auth.refreshes());
  r = parse(with("auth", R"({"token_env": "T", "refresh_token_env": "R"})"));
  REQUIRE(r.job);
  CHECK(r.job->auth.refresh_token_env == "R");
  CHECK(!parse(minimal).job->auth.refreshes());
  CHECK(only_error(
            with("auth",
                 R"({"token_file": "t", "refresh_token_file": "a", "refresh_token_env": "B"})"))
            .message.find("at most one of refresh_token_file") != std::string::npos);
  CHECK(only_error(with("auth", R"({"token_command": ["x"], "refresh_token_env": "B"})"))
            .message.find("not a token_command") != std::string::npos);
}

TEST_CASE("the guard's delivery kinds and canary_wait_for need acks") {
  const std::string acks = R"("acks": {"ndjson": "a.ndjson"}, )";
  const auto job_with = [&](const std::string& rollout, bool with_acks) {
    std::string t = with("rollout", rollout);
    if (with_acks) t.insert(1, acks);
    return t;
  };
  auto r = parse(job_with(
      R"({"canary_devices": 10, "canary_wait_for": "ack", "abort_on": ["delivery_failed", "no_ack", "device_failed"]})",
      true));
  REQUIRE(r.job);
  CHECK(r.job->rollout.canary_wait_for_ack);
  CHECK(r.job->rollout.abort_on ==
        (rollout_config::abort_on_delivery_failed | rollout_config::abort_on_no_ack |
         1u << static_cast<unsigned>(outcome_reason::device_failed)));
  CHECK(only_error(job_with(R"({"abort_on": ["no_ack"]})", false)).message.find("need acks") !=
        std::string::npos);
  CHECK(only_error(job_with(R"({"canary_devices": 5, "canary_wait_for": "ack"})", false))
            .message.find("needs acks") != std::string::npos);
  CHECK(only_error(job_with(R"({"canary_wait_for": "ack"})", true))
            .message.find("needs rollout.canary_devices") != std::string::npos);
  CHECK(only_error(job_with(R"({"canary_devices": 5, "canary_wait_for": "acks"})", true))
            .message.find("\"answer\" or \"ack\"") != std::string::npos);
}
