// The emulator's request handling, with no sockets and injected time: every
// code, every fault, determinism under the seed, the record and the stats.
#include "core/emulator/emulator_session.hpp"
#include "core/dispatch/accountant.hpp"
#include "core/protocol/request_encoder.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <set>
#include <string>
#include <vector>

using namespace fleetcast;

namespace {

struct memory_record : emulator_record_sink {
  std::string lines;
  void write(std::string_view l) override { lines += l; }
};

std::string body_for(int devices, std::string_view command_json = R"("type":2,"data":"[]")",
                     std::string_view product = "p1") {
  std::string b = fmt::format("{{{},\"deviceList\":[", command_json);
  for (int i = 0; i < devices; ++i) {
    b += fmt::format("{}{{\"productKey\":\"{}\",\"deviceKey\":\"d{}\"}}", i ? "," : "", product, i);
  }
  return b + "]}";
}

emulator_request post(const std::string& body, std::string_view token = "Bearer t",
                      std::uint64_t nth = 1) {
  emulator_request r;
  r.method = "POST";
  r.target = batch_control_path;
  r.authorization = token;
  r.body = body;
  r.connection_request = nth;
  return r;
}

std::int64_t body_code(std::string_view body) {
  response_decoder d;
  REQUIRE(!d.decode(body));
  return d.response().code;
}

}  // namespace

TEST_CASE("paths and methods") {
  emulator_state state({});
  emulator_session s(state);
  emulator_request r = post(body_for(1));
  r.target = "/v2/other";
  CHECK(s.handle(r, 0).status == 404);
  r.target = batch_control_path;
  r.method = "GET";
  auto& reply = s.handle(r, 0);
  CHECK(reply.status == 405);
  CHECK(reply.allow == "POST");
  r.target = "/stats";
  CHECK(s.handle(r, 0).status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element stats;
  REQUIRE(p.parse(std::string(s.body())).get(stats) == simdjson::SUCCESS);
  CHECK(int64_t(stats["http"]["404"]) == 1);
  CHECK(int64_t(stats["http"]["405"]) == 1);
  r.method = "POST";
  CHECK(s.handle(r, 0).status == 405);
  CHECK(s.refuse(413).status == 413);
  CHECK(s.refuse(413).close);
  CHECK(state.counter(emulator_counter::http_413) == 2);
}

TEST_CASE("5106 without a token, 5032 for a token not accepted or expired") {
  emulator_config cfg;
  cfg.tokens = {"Bearer good", "Bearer other"};
  cfg.faults.token_expires_after_requests = 2;
  emulator_state state(cfg);
  emulator_session s(state);
  const auto body = body_for(1);
  auto r = post(body);
  r.authorization.reset();
  CHECK(s.handle(r, 0).status == 200);
  CHECK(body_code(s.body()) == 5106);
  r.authorization = "";
  s.handle(r, 0);
  CHECK(body_code(s.body()) == 5106);
  s.handle(post(body, "Bearer bad"), 0);
  CHECK(body_code(s.body()) == 5032);
  s.handle(post(body, "Bearer good"), 0);
  CHECK(body_code(s.body()) == 200);
  s.handle(post(body, "Bearer good"), 0);
  CHECK(body_code(s.body()) == 200);
  s.handle(post(body, "Bearer good"), 0);  // third use: expired
  CHECK(body_code(s.body()) == 5032);
  CHECK(state.counter(emulator_counter::tokens_expired) == 1);
  s.handle(post(body, "Bearer other"), 0);  // a rotated token works
  CHECK(body_code(s.body()) == 200);
}

TEST_CASE("every validation code of the reference page, from core's own rules") {
  emulator_state state({});
  emulator_session s(state);
  struct k {
    const char* command;
    std::int64_t code;
  } cases[] = {
      {R"("data":"[]")", 5070},
      {R"("type":"two","data":"[]")", 5071},
      {R"("type":7,"data":"[]")", 5071},
      {R"("type":1,"data":"AB")", 5072},
      {R"("type":1,"data":"AB","dataFormat":5)", 5073},
      {R"("type":2)", 5074},
      {R"("type":2,"data":7)", 5074},
      {R"("type":2,"data":"[]","isCache":1)", 5328},
      {R"("type":2,"data":"[]","isCache":1,"cacheTime":7776001)", 5329},
      {R"("type":2,"data":"[]","isCache":9)", 5330},
      {R"("type":2,"data":"[]","isCover":9)", 5331},
      {R"("type":2,"data":"[]","qos":2)", 400},
      {R"("type":2,"data":"[]")", 200},
  };
  for (const auto& c : cases) {
    CAPTURE(c.command);
    const auto body = body_for(2, c.command);
    s.handle(post(body), 0);
    CHECK(body_code(s.body()) == c.code);
  }
  std::string long_data = R"("type":1,"dataFormat":2,"data":")" + std::string(4097, 'x') + "\"";
  const auto body = body_for(1, long_data);
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 5075);
  CHECK(state.counter(emulator_counter::devices) == 2);  // only the valid request executed
}

TEST_CASE("5311 empty list, 5312 over the limit, 5041 a product not permitted") {
  emulator_config cfg;
  cfg.max_devices = 3;
  cfg.products = {"p1", "p2"};
  emulator_state state(cfg);
  emulator_session s(state);
  std::string body = R"({"type":2,"data":"[]"})";
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 5311);
  body = R"({"type":2,"data":"[]","deviceList":[]})";
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 5311);
  body = body_for(3);
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 200);
  body = body_for(4);
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 5312);
  body =
      R"({"type":2,"data":"[]","deviceList":[{"productKey":"p2","deviceKey":"a"},{"productKey":"p9","deviceKey":"b"}]})";
  s.handle(post(body), 0);
  CHECK(body_code(s.body()) == 5041);
  CHECK(state.counter(emulator_counter::devices) == 3);  // the 5041 request executed nothing
  s.handle(post("{not json"), 0);
  CHECK(s.handle(post("[1]"), 0).status == 400);
}

TEST_CASE("a valid request: every device in exactly one list, tickets unique, record complete") {
  memory_record record;
  emulator_config cfg;
  cfg.max_devices = 500;
  cfg.device_failure_ratio = 0.3;
  emulator_state state(cfg, &record);
  emulator_session s(state);
  command cmd;
  cmd.type = 2;
  cmd.data = R"([{"switch":true}])";
  request_encoder enc(cmd);
  batch b;
  for (int i = 0; i < 500; ++i) {
    b.add(i, {"p1", fmt::format("dev{}", i), i % 5 ? "" : "gp", i % 5 ? "" : "gw"});
  }
  std::string body;
  enc.encode(b, body);
  REQUIRE(s.handle(post(body), 0).status == 200);

  response_decoder d;
  REQUIRE(!d.decode(s.body()));
  CHECK(d.response().code == 200);
  accountant a;
  struct tally : result_sink {
    int ok = 0, failed = 0, other = 0;
    std::set<std::string> tickets;
    void on_result(const device_result& r) override {
      if (r.reason == outcome_reason::accepted) {
        ++ok;
        tickets.insert(std::string(r.ticket));
      } else if (r.reason == outcome_reason::device_failed) {
        ++failed;
        CHECK((r.msg == "device offline" || r.msg == "device not found"));
      } else {
        ++other;
      }
    }
  } t;
  auto anomalies = a.account_answer(b, d.response(), t);
  CHECK(anomalies.missing_devices == 0);
  CHECK(anomalies.unexpected_entries == 0);
  CHECK(t.ok + t.failed == 500);
  CHECK(t.other == 0);
  CHECK(t.tickets.size() == static_cast<std::size_t>(t.ok));
  CHECK(t.failed > 100);  // 0.3 of 500, give or take
  CHECK(t.failed < 200);

  // One record line per executed device command.
  simdjson::dom::parser p;
  std::size_t lines = 0;
  std::set<std::string> keys;
  for (auto doc : p.parse_many(record.lines)) {
    simdjson::dom::element e;
    REQUIRE(doc.get(e) == simdjson::SUCCESS);
    keys.insert(std::string(std::string_view(e["deviceKey"])));
    CHECK(int64_t(e["request"]) == 1);
    ++lines;
  }
  CHECK(lines == 500);
  CHECK(keys.size() == 500);

  // Tickets stay unique across requests.
  REQUIRE(s.handle(post(body), 0).status == 200);
  REQUIRE(!d.decode(s.body()));
  for (const auto& x : d.response().successes) CHECK(t.tickets.count(std::string(x.ticket)) == 0);
}

TEST_CASE("per-device outcomes are deterministic under the seed and change with it") {
  auto failures = [](std::uint64_t seed) {
    emulator_config cfg;
    cfg.seed = seed;
    cfg.max_devices = 200;
    cfg.device_failure_ratio = 0.5;
    emulator_state state(cfg);
    emulator_session s(state);
    const auto body = body_for(200);
    s.handle(post(body), 0);
    response_decoder d;
    REQUIRE(!d.decode(s.body()));
    std::set<std::string> out;
    for (const auto& f : d.response().failures) out.insert(std::string(f.device.device_key));
    return out;
  };
  CHECK(failures(7) == failures(7));
  CHECK(failures(7) != failures(8));
}

TEST_CASE("faults: 502, 503, 5340 execute nothing, reset and stall execute, then lose or delay") {
  auto run = [](auto set) {
    emulator_config cfg;
    set(cfg.faults);
    auto state = std::make_unique<emulator_state>(cfg);
    return state;
  };
  const auto body = body_for(5);
  {
    auto st = run([](emulator_faults& f) { f.http_502_ratio = 1; });
    emulator_session s(*st);
    auto& r = s.handle(post(body), 0);
    CHECK(r.status == 502);
    CHECK(r.content_type == "text/html");
    CHECK(st->counter(emulator_counter::devices) == 0);
  }
  {
    auto st = run([](emulator_faults& f) { f.http_503_ratio = 1; });
    emulator_session s(*st);
    auto& r = s.handle(post(body), 0);
    CHECK(r.status == 503);
    CHECK(r.retry_after_s == 1);
    CHECK(st->counter(emulator_counter::devices) == 0);
  }
  {
    auto st = run([](emulator_faults& f) { f.code_5340_ratio = 1; });
    emulator_session s(*st);
    s.handle(post(body), 0);
    CHECK(body_code(s.body()) == 5340);
    CHECK(st->counter(emulator_counter::devices) == 0);
  }
  {
    auto st = run([](emulator_faults& f) { f.reset_ratio = 1; });
    emulator_session s(*st);
    CHECK(s.handle(post(body), 0).what == emulator_reply::kind::reset);
    CHECK(st->counter(emulator_counter::devices) == 5);  // executed, answer lost
  }
  {
    auto st = run([](emulator_faults& f) {
      f.stall_ratio = 1;
      f.stall_ms = 45000;
    });
    emulator_session s(*st);
    auto& r = s.handle(post(body), 0);
    CHECK(r.delay_ms == 45000);
    CHECK(body_code(s.body()) == 200);
  }
  {
    auto st = run([](emulator_faults& f) { f.missing_device_ratio = 1; });
    emulator_session s(*st);
    s.handle(post(body), 0);
    response_decoder d;
    REQUIRE(!d.decode(s.body()));
    CHECK(d.response().successes.empty());
    CHECK(st->counter(emulator_counter::unreported) == 5);
  }
  {
    auto st = run([](emulator_faults& f) { f.close_after_requests = 3; });
    emulator_session s(*st);
    CHECK(!s.handle(post(body, "Bearer t", 1), 0).close);
    CHECK(!s.handle(post(body, "Bearer t", 2), 0).close);
    CHECK(s.handle(post(body, "Bearer t", 3), 0).close);
  }
}

TEST_CASE("fault ratios hit about their share, the same requests every time") {
  auto pattern = [] {
    emulator_config cfg;
    cfg.faults.http_503_ratio = 0.25;
    emulator_state state(cfg);
    emulator_session s(state);
    const auto body = body_for(1);
    std::string out;
    for (int i = 0; i < 400; ++i) out += s.handle(post(body), 0).status == 503 ? 'x' : '.';
    return out;
  };
  const auto a = pattern();
  CHECK(a == pattern());
  const auto hits = std::count(a.begin(), a.end(), 'x');
  CHECK(hits > 60);
  CHECK(hits < 140);
}

TEST_CASE("latency: fixed plus a deterministic random part within bounds") {
  emulator_config cfg;
  cfg.latency_fixed_ms = 10;
  cfg.latency_random_ms = 5;
  emulator_state state(cfg);
  emulator_session s(state);
  const auto body = body_for(1);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const auto d = s.handle(post(body), 0).delay_ms;
    CHECK(d >= 10);
    CHECK(d <= 15);
    seen.insert(d);
  }
  CHECK(seen.size() == 6);
}

TEST_CASE("the request rate limit answers 429 with Retry-After, refilling with time") {
  emulator_config cfg;
  cfg.rate_limit_rps = 10;
  emulator_state state(cfg);
  emulator_session s(state);
  const auto body = body_for(1);
  for (int i = 0; i < 10; ++i) CHECK(s.handle(post(body), 1000).status == 200);
  auto& r = s.handle(post(body), 1000);
  CHECK(r.status == 429);
  CHECK(r.retry_after_s == 1);
  CHECK(s.handle(post(body), 1050).status == 429);  // half a token
  CHECK(s.handle(post(body), 1100).status == 200);  // one token back
  CHECK(s.handle(post(body), 1100).status == 429);
  CHECK(s.handle(post(body), 2100).status == 200);
  CHECK(state.counter(emulator_counter::http_429) == 3);
}

TEST_CASE("devices in flight are counted per gateway until answered") {
  emulator_state state({});
  emulator_session a(state), b(state);
  const std::string body = R"({"type":2,"data":"[]","deviceList":[
    {"productKey":"p","deviceKey":"1","gatewayProductKey":"g","gatewayDeviceKey":"A"},
    {"productKey":"p","deviceKey":"2","gatewayProductKey":"g","gatewayDeviceKey":"A"},
    {"productKey":"p","deviceKey":"3","gatewayProductKey":"g","gatewayDeviceKey":"B"}]})";
  a.handle(post(body), 0);
  b.handle(post(body), 0);
  CHECK(state.peak_in_flight_per_gateway() == 4);
  a.answered();
  b.answered();
  a.handle(post(body), 0);
  CHECK(state.peak_in_flight_per_gateway() == 4);
  a.answered();
  simdjson::dom::parser p;
  simdjson::dom::element stats;
  REQUIRE(p.parse(state.stats_json()).get(stats) == simdjson::SUCCESS);
  CHECK(int64_t(stats["peak_in_flight_per_gateway"]) == 4);
  CHECK(std::string_view(stats["peak_gateway"]) == "g/A");
  CHECK(int64_t(stats["in_flight_gateway_devices"]) == 0);
}

TEST_CASE("hostile bodies never crash the handler") {
  emulator_state state({});
  emulator_session s(state);
  const std::string good = body_for(3);
  for (std::size_t n = 0; n <= good.size(); ++n) {
    const std::string part = good.substr(0, n);
    const auto& r = s.handle(post(part), 0);
    CHECK((r.status == 200 || r.status == 400));
  }
  const std::string weird =
      R"({"type":2,"data":"[]","deviceList":[1,"x",null,{"productKey":5},{"deviceKey":"d"}]})";
  CHECK(s.handle(post(weird), 0).status == 200);
  response_decoder d;
  REQUIRE(!d.decode(s.body()));
  CHECK(d.response().failures.size() == 5);
}

TEST_CASE("emulator config: defaults, every key, unknown keys refused") {
  auto r = parse_emulator_config("{}", "/etc/fc/emu.json");
  REQUIRE(r.config);
  CHECK(r.config->max_devices == 100);
  CHECK(r.config->tls);
  r = parse_emulator_config(R"({"listen":"[::1]:9000","tls":false,"threads":2,"seed":9,
    "tokens":["Bearer a"],"products":["p"],"max_devices":500,"max_body_bytes":2048,
    "device_failure_ratio":0.1,"failure_messages":["offline"],"latency_ms":{"fixed":3,"random":4},
    "rate_limit_rps":50,"record":"rec.ndjson","faults":{"reset_ratio":0.01,"http_502_ratio":0.02,
    "http_503_ratio":0.03,"code_5340_ratio":0.04,"close_after_requests":100,"stall_ratio":0.05,
    "stall_ms":1000,"token_expires_after_requests":10,"missing_device_ratio":0.06}})",
                            "/etc/fc/emu.json");
  REQUIRE(r.errors.empty());
  const auto& c = *r.config;
  CHECK(!c.tls);
  CHECK(c.listen == "[::1]:9000");
  CHECK(c.latency_random_ms == 4);
  CHECK(c.record == "/etc/fc/rec.ndjson");
  CHECK(c.faults.stall_ms == 1000);
  CHECK(c.faults.missing_device_ratio == 0.06);
  r = parse_emulator_config(R"({"tls":{"cert":"c.pem","key":"k.pem"},"latency_ms":7})", "x/e.json");
  REQUIRE(r.config);
  CHECK(r.config->cert_file == "x/c.pem");
  CHECK(r.config->latency_fixed_ms == 7);
  r = parse_emulator_config(R"({"faults":{"reset":0.5},"device_failure_ratio":2,"thread":1})",
                            "e.json");
  CHECK(!r.config);
  CHECK(r.errors.size() == 3);
  r = parse_emulator_config("{\n\"a\":}", "e.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].starts_with("2:5: invalid JSON"));
}

TEST_CASE("the subscription's plan per ticket: deterministic, with the configured ratios") {
  emulator_acks a;
  a.ndjson = "acks.ndjson";
  a.fail_ratio = 0.2;
  a.loss_ratio = 0.1;
  a.duplicate_ratio = 0.3;
  a.early_ratio = 0.25;
  a.delay_ms = 100;
  a.delay_random_ms = 50;
  int lost = 0, failed = 0, dup = 0, early = 0;
  constexpr int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto p = plan_ack(a, static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL, 7);
    const auto q = plan_ack(a, static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL, 7);
    REQUIRE(p.what == q.what);
    REQUIRE(p.delay_ms == q.delay_ms);
    lost += p.what == emulator_ack_plan::fate::lost;
    failed += p.what == emulator_ack_plan::fate::fail;
    dup += p.second_ms > 0;
    early += p.early;
    if (p.early) {
      CHECK(p.delay_ms == 0);
    } else {
      CHECK(p.delay_ms >= 100);
      CHECK(p.delay_ms <= 150);
    }
    if (p.second_ms) CHECK(p.second_ms > p.delay_ms);
  }
  CHECK(lost == doctest::Approx(0.1 * n).epsilon(0.1));
  CHECK(failed == doctest::Approx(0.9 * 0.2 * n).epsilon(0.1));
  CHECK(dup == doctest::Approx(0.3 * n).epsilon(0.1));
  CHECK(early == doctest::Approx(0.25 * n).epsilon(0.1));
}
