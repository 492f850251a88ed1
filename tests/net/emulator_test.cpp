// The emulator over real sockets on loopback, on ports it picks itself:
// plain HTTP and TLS, every code, every fault, pipelining, limits, the
// record and the counters.
#include <fleetcast/net/server/emulator.hpp>
#include "core/dispatch/accountant.hpp"
#include "core/emulator/emulator_session.hpp"
#include "net/server/tls_identity.hpp"
#include "tests/net/test_client.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace fleetcast;
using test::test_client;

namespace {

constexpr std::string_view api = batch_control_path;

emulator_config plain_config() {
  emulator_config c;
  c.listen = "127.0.0.1:0";
  c.tls = false;
  c.threads = 2;
  return c;
}

std::string devices_body(int n, std::string_view prefix = "d", std::string_view product = "p1") {
  std::string b = R"({"type":2,"data":"[{\"switch\":true}]","deviceList":[)";
  for (int i = 0; i < n; ++i) {
    b += fmt::format(R"({}{{"productKey":"{}","deviceKey":"{}{}"}})", i ? "," : "", product, prefix,
                     i);
  }
  return b + "]}";
}

std::int64_t code_of(const test::http_answer& a) {
  response_decoder d;
  REQUIRE(!d.decode(a.body));
  return d.response().code;
}

simdjson::dom::element stats_of(test_client& c, simdjson::dom::parser& p) {
  auto a = c.get("/stats");
  REQUIRE(a.status == 200);
  simdjson::dom::element e;
  REQUIRE(p.parse(a.body).get(e) == simdjson::SUCCESS);
  return e;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         fmt::format("fleetcast-test-{}-{}", ::getpid(), name);
}

}  // namespace

TEST_CASE("plain HTTP: a command is executed and every request-level code is answered") {
  auto cfg = plain_config();
  cfg.max_devices = 5;
  cfg.products = {"p1"};
  cfg.tokens = {"Bearer good"};
  net::emulator emu(cfg);
  CHECK(emu.port() != 0);
  CHECK(emu.url() == fmt::format("http://127.0.0.1:{}", emu.port()));
  test_client c("127.0.0.1", emu.port());
  REQUIRE(!c.connect_error());

  auto a = c.post(api, devices_body(5), "Bearer good");
  REQUIRE(a.status == 200);
  CHECK(a.content_type == "application/json");
  CHECK(code_of(a) == 200);
  response_decoder d;
  REQUIRE(!d.decode(a.body));
  CHECK(d.response().successes.size() == 5);

  CHECK(code_of(c.post(api, devices_body(1), std::nullopt)) == 5106);
  CHECK(code_of(c.post(api, devices_body(1), "Bearer bad")) == 5032);
  CHECK(code_of(c.post(api, devices_body(6), "Bearer good")) == 5312);
  CHECK(code_of(c.post(api, R"({"type":2,"data":"[]","deviceList":[]})", "Bearer good")) == 5311);
  CHECK(code_of(c.post(api, devices_body(2, "d", "p2"), "Bearer good")) == 5041);
  CHECK(code_of(c.post(
            api, R"({"type":5,"data":"x","deviceList":[{"productKey":"p1","deviceKey":"a"}]})",
            "Bearer good")) == 5071);
  CHECK(c.post("/nowhere", "{}").status == 404);
  auto m = c.get(api);
  CHECK(m.status == 405);
  CHECK(m.allow == "POST");
  CHECK(c.post(api, "not json", "Bearer good").status == 400);

  simdjson::dom::parser p;
  auto s = stats_of(c, p);
  CHECK(int64_t(s["devices"]) == 5);
  CHECK(int64_t(s["codes"]["5106"]) == 1);
  CHECK(int64_t(s["codes"]["5032"]) == 1);
  CHECK(int64_t(s["codes"]["5312"]) == 1);
  CHECK(int64_t(s["codes"]["5311"]) == 1);
  CHECK(int64_t(s["codes"]["5041"]) == 1);
  CHECK(int64_t(s["codes"]["validation"]) == 1);
  CHECK(int64_t(s["http"]["404"]) == 1);
  CHECK(int64_t(s["http"]["405"]) == 1);
  CHECK(int64_t(s["http"]["400"]) == 1);
}

TEST_CASE("TLS: verified against the emulator's certificate, untrusted or misnamed is refused") {
  auto cfg = plain_config();
  cfg.tls = true;
  net::emulator emu(cfg);
  REQUIRE(emu.tls());
  CHECK(emu.url().starts_with("https://127.0.0.1:"));
  REQUIRE(emu.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));

  test_client good("127.0.0.1", emu.port(), emu.certificate_pem(), "localhost");
  REQUIRE(!good.connect_error());
  CHECK(code_of(good.post(api, devices_body(3))) == 200);
  CHECK(code_of(good.post(api, devices_body(3, "e"))) == 200);  // keep-alive over TLS

  const auto other = net::make_self_signed_identity({"localhost"}, {"127.0.0.1"});
  test_client untrusted("127.0.0.1", emu.port(), other.cert_pem, "localhost");
  CHECK(untrusted.connect_error());
  test_client misnamed("127.0.0.1", emu.port(), emu.certificate_pem(), "iot-api.example.com");
  CHECK(misnamed.connect_error());
}

TEST_CASE("answers and requests larger than a TLS record arrive whole") {
  // A regression test: head and body written as two buffers over TLS used to
  // stop after the head once the message passed 16 KiB.
  auto cfg = plain_config();
  cfg.tls = true;
  cfg.max_devices = 2000;
  net::emulator emu(cfg);
  test_client c("127.0.0.1", emu.port(), emu.certificate_pem());
  REQUIRE(!c.connect_error());
  c.set_receive_timeout_ms(10000);
  for (int n : {100, 500, 2000}) {
    CAPTURE(n);
    auto a = c.post(api, devices_body(n, fmt::format("big{}x", n)));
    CAPTURE(a.error.message());
    REQUIRE(!a.error);
    CHECK(a.body.size() > static_cast<std::size_t>(n) * 60);
    response_decoder d;
    REQUIRE(!d.decode(a.body));
    CHECK(d.response().successes.size() == static_cast<std::size_t>(n));
  }
}

TEST_CASE("a given certificate and key are served") {
  const auto id = net::make_self_signed_identity({"emulator.test"}, {});
  const auto cert = temp_path("cert.pem"), key = temp_path("key.pem");
  std::ofstream(cert) << id.cert_pem;
  std::ofstream(key) << id.key_pem;
  auto cfg = plain_config();
  cfg.tls = true;
  cfg.cert_file = cert.string();
  cfg.key_file = key.string();
  net::emulator emu(cfg);
  CHECK(emu.certificate_pem() == id.cert_pem);
  test_client c("127.0.0.1", emu.port(), id.cert_pem, "emulator.test");
  REQUIRE(!c.connect_error());
  CHECK(code_of(c.post(api, devices_body(1))) == 200);
  std::filesystem::remove(cert);
  std::filesystem::remove(key);
  cfg.cert_file = "/nonexistent/cert.pem";
  CHECK_THROWS_WITH_AS(net::emulator{cfg}, "/nonexistent/cert.pem: cannot open",
                       std::runtime_error);
}

TEST_CASE("pipelined requests are answered in order, over plain HTTP and TLS") {
  for (bool tls : {false, true}) {
    CAPTURE(tls);
    auto cfg = plain_config();
    cfg.tls = tls;
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port(), emu.certificate_pem());
    REQUIRE(!c.connect_error());
    std::string all;
    for (int i = 0; i < 5; ++i) {
      all += test_client::request_text("POST", api, devices_body(2, fmt::format("r{}x", i)));
    }
    REQUIRE(!c.send(all));
    for (int i = 0; i < 5; ++i) {
      auto a = c.receive();
      REQUIRE(a.status == 200);
      response_decoder d;
      REQUIRE(!d.decode(a.body));
      REQUIRE(d.response().successes.size() == 2);
      CHECK(d.response().successes[0].device.device_key == fmt::format("r{}x0", i));
    }
  }
}

TEST_CASE("bodies over the limit get 413, headers over 8 KiB get 431, malformed HTTP is dropped") {
  auto cfg = plain_config();
  cfg.max_body_bytes = 4096;
  net::emulator emu(cfg);
  {
    test_client c("127.0.0.1", emu.port());
    auto a = c.post(api, devices_body(200));
    CHECK(a.status == 413);
    CHECK(a.connection == "close");
  }
  {
    test_client c("127.0.0.1", emu.port());
    const std::string big(9000, 'x');
    auto a = c.post(api, devices_body(1), big);
    CHECK(a.status == 431);
  }
  {
    test_client c("127.0.0.1", emu.port());
    c.set_receive_timeout_ms(5000);
    REQUIRE(!c.send("this is not HTTP\r\n\r\n"));
    auto a = c.receive();
    CHECK(a.error);  // closed without an answer, well before the timeout
    CHECK(a.error != boost::asio::error::timed_out);
    CHECK(a.status == 0);
  }
  test_client c("127.0.0.1", emu.port());
  CHECK(code_of(c.post(api, devices_body(1))) == 200);  // the server is still serving
}

TEST_CASE(
    "close after N requests: Connection: close on the Nth answer, queued requests unanswered") {
  auto cfg = plain_config();
  cfg.faults.close_after_requests = 2;
  net::emulator emu(cfg);
  test_client c("127.0.0.1", emu.port());
  std::string all;
  for (int i = 0; i < 3; ++i)
    all += test_client::request_text("POST", api, devices_body(1, fmt::format("q{}", i)));
  REQUIRE(!c.send(all));
  auto first = c.receive();
  CHECK(first.status == 200);
  CHECK(first.connection.empty());
  auto second = c.receive();
  CHECK(second.status == 200);
  CHECK(second.connection == "close");
  auto third = c.receive();
  CHECK(third.error);
  CHECK(emu.state().counter(emulator_counter::devices) == 2);  // the third was never executed
}

TEST_CASE("a reset after the request was read: executed, recorded, never answered") {
  const auto record = temp_path("reset.ndjson");
  auto cfg = plain_config();
  cfg.faults.reset_ratio = 1;
  cfg.record = record.string();
  {
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port());
    auto a = c.post(api, devices_body(3));
    CHECK(a.error);
    CHECK(a.status == 0);
    CHECK(emu.state().counter(emulator_counter::resets) == 1);
    CHECK(emu.state().counter(emulator_counter::devices) == 3);
  }
  std::ifstream in(record);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == 3);
  std::filesystem::remove(record);
}

TEST_CASE("a stall holds the answer past the client's timeout") {
  auto cfg = plain_config();
  cfg.faults.stall_ratio = 1;
  cfg.faults.stall_ms = 3000;
  net::emulator emu(cfg);
  test_client c("127.0.0.1", emu.port());
  c.set_receive_timeout_ms(200);
  auto a = c.post(api, devices_body(1));
  CHECK(a.error == boost::asio::error::timed_out);
  CHECK(emu.state().counter(emulator_counter::stalls) == 1);
  CHECK(emu.state().counter(emulator_counter::devices) == 1);  // executed before the stall
}

TEST_CASE("gateway answers: 429 with Retry-After, 502, 503 with Retry-After, body code 5340") {
  {
    auto cfg = plain_config();
    cfg.rate_limit_rps = 2;
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port());
    int limited = 0;
    for (int i = 0; i < 6; ++i) {
      auto a = c.post(api, devices_body(1));
      if (a.status == 429) {
        ++limited;
        CHECK(a.retry_after == "1");
      }
    }
    CHECK(limited >= 3);  // 2 per second: at most 2 (+1 refilled) of 6 pass
  }
  {
    auto cfg = plain_config();
    cfg.faults.http_502_ratio = 1;
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port());
    auto a = c.post(api, devices_body(1));
    CHECK(a.status == 502);
    CHECK(a.content_type == "text/html");
  }
  {
    auto cfg = plain_config();
    cfg.faults.http_503_ratio = 1;
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port());
    auto a = c.post(api, devices_body(1));
    CHECK(a.status == 503);
    CHECK(a.retry_after == "1");
  }
  {
    auto cfg = plain_config();
    cfg.faults.code_5340_ratio = 1;
    net::emulator emu(cfg);
    test_client c("127.0.0.1", emu.port());
    CHECK(code_of(c.post(api, devices_body(1))) == 5340);
    CHECK(emu.state().counter(emulator_counter::devices) == 0);
  }
}

TEST_CASE("a token that expires after N requests is refused with 5032, a fresh one works") {
  auto cfg = plain_config();
  cfg.faults.token_expires_after_requests = 3;
  net::emulator emu(cfg);
  test_client c("127.0.0.1", emu.port());
  for (int i = 0; i < 3; ++i)
    CHECK(code_of(c.post(api, devices_body(1, fmt::format("t{}", i)), "Bearer one")) == 200);
  CHECK(code_of(c.post(api, devices_body(1), "Bearer one")) == 5032);
  CHECK(code_of(c.post(api, devices_body(1), "Bearer two")) == 200);
}

TEST_CASE(
    "many clients at once: each device commanded once, tickets unique, record and counters agree") {
  const auto record = temp_path("many.ndjson");
  auto cfg = plain_config();
  cfg.tls = true;
  cfg.max_devices = 100;
  cfg.device_failure_ratio = 0.1;
  cfg.latency_fixed_ms = 1;
  cfg.record = record.string();
  constexpr int clients = 8, requests = 25, per_request = 100;
  std::vector<std::vector<std::string>> tickets(clients);
  std::vector<int> failed(clients, 0);
  {
    net::emulator emu(cfg);
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        test_client c("127.0.0.1", emu.port(), emu.certificate_pem());
        if (c.connect_error()) return;
        response_decoder d;
        for (int r = 0; r < requests; ++r) {
          auto a = c.post(api, devices_body(per_request, fmt::format("c{}r{}d", t, r)));
          if (a.status != 200 || d.decode(a.body)) continue;
          for (const auto& s : d.response().successes) tickets[t].emplace_back(s.ticket);
          failed[t] += static_cast<int>(d.response().failures.size());
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(emu.state().counter(emulator_counter::api_requests) == clients * requests);
    CHECK(emu.state().counter(emulator_counter::devices) == clients * requests * per_request);
  }
  std::set<std::string> unique;
  std::size_t total = 0;
  int failures = 0;
  for (int t = 0; t < clients; ++t) {
    total += tickets[t].size();
    unique.insert(tickets[t].begin(), tickets[t].end());
    failures += failed[t];
  }
  CHECK(total + failures == clients * requests * per_request);
  CHECK(unique.size() == total);
  // The record names every device command exactly once.
  simdjson::dom::parser p;
  simdjson::padded_string text;
  REQUIRE(simdjson::padded_string::load(record.string()).get(text) == simdjson::SUCCESS);
  std::set<std::string> devices;
  std::size_t lines = 0;
  for (auto doc : p.parse_many(text)) {
    simdjson::dom::element e;
    REQUIRE(doc.get(e) == simdjson::SUCCESS);
    devices.insert(std::string(std::string_view(e["deviceKey"])));
    ++lines;
  }
  CHECK(lines == clients * requests * per_request);
  CHECK(devices.size() == lines);
  std::filesystem::remove(record);
}

TEST_CASE("IPv6 loopback, when the machine has it") {
  auto cfg = plain_config();
  cfg.listen = "[::1]:0";
  std::unique_ptr<net::emulator> emu;
  try {
    emu = std::make_unique<net::emulator>(cfg);
  } catch (const std::exception& e) {
    MESSAGE("no IPv6 loopback here: " << e.what());
    return;
  }
  CHECK(emu->url() == fmt::format("http://[::1]:{}", emu->port()));
  test_client c("::1", emu->port());
  REQUIRE(!c.connect_error());
  CHECK(code_of(c.post(api, devices_body(1))) == 200);
}

TEST_CASE("start-up errors name what failed") {
  auto cfg = plain_config();
  cfg.listen = "nohost:1";
  CHECK_THROWS_WITH_AS(net::emulator{cfg}, doctest::Contains("is not an IP address"),
                       std::runtime_error);
  net::emulator first(plain_config());
  cfg.listen = fmt::format("127.0.0.1:{}", first.port());
  CHECK_THROWS_WITH_AS(net::emulator{cfg}, doctest::Contains("listen 127.0.0.1:"),
                       std::runtime_error);
  cfg.listen = "127.0.0.1:0";
  cfg.record = "/nonexistent/dir/record.ndjson";
  CHECK_THROWS_WITH_AS(net::emulator{cfg}, doctest::Contains("cannot open the record file"),
                       std::runtime_error);
}
