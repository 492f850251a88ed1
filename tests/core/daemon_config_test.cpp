// The daemon's config file and its Prometheus text output.
#include "core/daemon/daemon_config.hpp"
#include "core/output/prometheus.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace fleetcast;

namespace {
std::string errors_of(std::string_view text) {
  std::string all;
  for (const auto& e : parse_daemon_config(text).errors) all += e + "\n";
  return all;
}
}  // namespace

TEST_CASE("daemon config: defaults, the example file, every field") {
  auto empty = parse_daemon_config("{}");
  REQUIRE(empty.config);
  CHECK(empty.config->max_jobs == 4);
  CHECK(empty.config->fsync == daemon_config::fsync_mode::every_batch);
  CHECK(empty.config->admin_listen == "127.0.0.1:9464");

  std::ifstream in(FLEETCAST_SOURCE_DIR "/config/daemon.example.json");
  std::stringstream text;
  text << in.rdbuf();
  auto example = parse_daemon_config(text.str());
  REQUIRE_MESSAGE(example.config, errors_of(text.str()));
  CHECK(example.config->limits_for("https://iot-api.acceleronix.io/").requests_per_second == 20);

  auto full = parse_daemon_config(R"({"max_jobs": 2, "admin_listen": "[::1]:0",
    "poll_interval_ms": 50, "drain_timeout_s": 5, "fsync": {"interval_ms": 200},
    "default_endpoint": {"connections": 3},
    "endpoints": {"https://a.example/": {"requests_per_second": 7.5, "burst": 2}}})");
  REQUIRE(full.config);
  CHECK(full.config->fsync == daemon_config::fsync_mode::interval);
  CHECK(full.config->fsync_interval_ms == 200);
  const auto& a = full.config->limits_for("https://a.example");
  CHECK(a.requests_per_second == 7.5);
  CHECK(a.connections == 3);  // from default_endpoint
  CHECK(full.config->limits_for("https://b.example").requests_per_second == 0);
  CHECK(parse_daemon_config(R"({"fsync": "none"})").config->fsync ==
        daemon_config::fsync_mode::none);
}

TEST_CASE("daemon config: each mistake named, the admin port on any address") {
  CHECK(errors_of(R"({"max_job": 2})").find("max_job: unknown field") != std::string::npos);
  CHECK(errors_of(R"({"max_jobs": 0})").find("max_jobs: must be in 1..1024") != std::string::npos);
  CHECK(errors_of(R"({"max_jobs": "2"})").find("max_jobs: must be a non-negative integer") !=
        std::string::npos);
  // Any address (its changes need a token or a loopback client: admin_access).
  CHECK(errors_of(R"({"admin_listen": "0.0.0.0:9464", "admin_token_file": "t"})").empty());
  CHECK(errors_of(R"({"admin_listen": "9464"})").find("admin_listen: \"9464\" is not HOST:PORT") !=
        std::string::npos);
  CHECK(errors_of(R"({"fsync": "always"})").find("fsync: must be") != std::string::npos);
  CHECK(errors_of(R"({"endpoints": {"https://a": {"connections": 0}}})")
            .find("endpoints.https://a.connections: must be in 1..4096") != std::string::npos);
  CHECK(errors_of("{\n  \"max_jobs\": 2,\n}").find("3:1: invalid JSON: expected a field name") !=
        std::string::npos);
  CHECK(is_loopback_listen("127.0.0.1:1"));
  CHECK(is_loopback_listen("[::1]:1"));
  CHECK_FALSE(is_loopback_listen("10.0.0.1:1"));
  CHECK_FALSE(is_loopback_listen("[::]:1"));
}

TEST_CASE("prometheus text: samples, escaped labels, cumulative histograms") {
  std::string out;
  prometheus::append_header(out, "x_total", "counter", "Things.");
  prometheus::append_sample(out, "x_total", "job", "a\"b\\c\nd", 3);
  prometheus::append_sample(out, "y", "", "", 0.25);
  CHECK(out ==
        "# HELP x_total Things.\n# TYPE x_total counter\n"
        "x_total{job=\"a\\\"b\\\\c\\nd\"} 3\ny 0.25\n");
  out.clear();
  prometheus::append_sample(out, "z", {{"job", "j\"1"}, {"status", "failed"}}, 7);
  CHECK(out == "z{job=\"j\\\"1\",status=\"failed\"} 7\n");
  prometheus::histogram h({0.1, 1});
  for (double v : {0.05, 0.1, 0.5, 2.0}) h.observe(v);
  out.clear();
  h.append(out, "lat", "Latency.");
  CHECK(out ==
        "# HELP lat Latency.\n# TYPE lat histogram\n"
        "lat_bucket{le=\"0.1\"} 2\nlat_bucket{le=\"1\"} 3\nlat_bucket{le=\"+Inf\"} 4\n"
        "lat_sum 2.65\nlat_count 4\n");
}
