// The bench command (see bench.hpp): a synthetic fleet, generated as it is
// read, rolled out by the real engine against the in-process emulator (on
// its own threads) or another server; devices/s, requests/s, latency
// percentiles, the engine's CPU time per million devices, peak RSS.
#include "app/bench.hpp"
#include "app/say.hpp"

#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>
#include "core/output/latency_histogram.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <sys/resource.h>

namespace fleetcast::app {
namespace {

// Devices made up as they are read: constant memory at any fleet size.
class synthetic_fleet final : public device_reader {
 public:
  explicit synthetic_fleet(std::uint64_t n) : n_(n) {}
  bool next(device_record& out) override {
    if (i_ == n_) return false;
    // "86" and 13 digits, like an IMEI-style key; written by hand: fmt's
    // general integer formatting would cost more than the rest of reading.
    std::uint64_t v = i_;
    for (int d = 14; d >= 2; --d) {
      key_[d] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    out.index = i_;
    out.line = i_ + 1;
    out.device = {"p1a2b3c4", {key_, 15}, {}, {}};
    out.problem.clear();
    ++i_;
    return true;
  }

 private:
  std::uint64_t n_, i_ = 0;
  char key_[16] = "86";
};

struct counting_sink final : result_sink {
  std::uint64_t results = 0;
  void on_result(const device_result&) override { ++results; }
};

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

// The process's peak resident set (ru_maxrss is in KiB on Linux).
static double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024;
}

// The bench's job over `target`; nullopt (said why) when it does not parse.
static std::optional<job> bench_job(const bench_flags& flags, const std::string& target) {
  const std::string text = fmt::format(
      R"({{"name":"bench","endpoint":"{}","auth":{{"token_env":"FLEETCAST_BENCH_TOKEN"}},
          "command":{{"type":2,"data":"[{{\"switch\":true}}]","qos":1,"isCache":1,"cacheTime":3600,"isCover":1}},
          "devices":{{"file":"synthetic.csv"}},"batch":{{"max_devices":{}}},
          "rate":{{"requests_per_second":0}},"connections":{},"pipeline_depth":{}{}}})",
      target, flags.batch, flags.connections, flags.pipeline,
      flags.ca_file.empty() ? "" : fmt::format(R"(,"tls":{{"ca_file":"{}"}})", flags.ca_file));
  auto parsed = parse_job(text, "bench.json");
  if (!parsed.job) {
    for (const auto& e : parsed.errors) say("fleetcast bench: {}\n", e.describe("bench"));
    return std::nullopt;
  }
  return std::move(*parsed.job);
}

int bench(const bench_flags& flags) {
  const auto& [devices, batch_size, connections, pipeline, latency, emulator_threads, tls, json,
               target_flag, ca_file] = flags;
  std::string target = target_flag;
  std::optional<net::emulator> emulator;
  net::rollout_options options;
  if (target.empty()) {
    emulator_config ec;
    ec.listen = "127.0.0.1:0";
    ec.tls = tls;
    ec.threads = static_cast<unsigned>(emulator_threads);
    ec.max_devices = static_cast<std::uint32_t>(batch_size);
    ec.latency_fixed_ms = static_cast<std::uint32_t>(latency);
    emulator.emplace(ec);
    target = emulator->url();
    options.extra_ca_pem = emulator->certificate_pem();
    options.system_trust_store = false;  // only the emulator's certificate
  }
  auto parsed = bench_job(flags, target);
  if (!parsed) return 2;
  if (emulator) parsed->proxy = "direct";  // in process: never through a proxy
  if (!std::getenv("FLEETCAST_BENCH_TOKEN")) setenv("FLEETCAST_BENCH_TOKEN", "Bearer bench", 0);

  device_stream fleet(std::make_unique<synthetic_fleet>(devices));
  fleet.expect_records(devices);
  counting_sink sink;
  latency_histogram latencies;
  options.on_answer = [&](std::int64_t micros) {
    latencies.record(static_cast<std::uint64_t>(micros));
  };
  net::rollout rollout(*parsed, fleet, sink, options);
  const double cpu_before = thread_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  run_summary summary;
  try {
    summary = rollout.run();
  } catch (const std::exception& e) {
    say("fleetcast bench: {}\n", e.what());
    return 2;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = thread_cpu_seconds() - cpu_before;
  const double rss_mib = peak_rss_mib();
  const double ms = 1e-3;
  const auto p = [&](double q) { return static_cast<double>(latencies.percentile(q)) * ms; };
  const auto succeeded = summary.count_of(device_status::succeeded);

  if (json) {
    fmt::print(
        "{{\"devices\":{},\"succeeded\":{},\"batch\":{},\"connections\":{},\"pipeline\":{},\"tls\":"
        "{},"
        "\"target\":\"{}\",\"elapsed_s\":{:.3f},\"devices_per_s\":{:.0f},\"requests\":{},"
        "\"requests_per_s\":{:.0f},\"latency_ms\":{{\"p50\":{:.3f},\"p90\":{:.3f},\"p99\":{:.3f},"
        "\"p99_9\":{:.3f},\"max\":{:.3f}}},\"client_cpu_s_per_million_devices\":{:.3f},"
        "\"peak_rss_mib\":{:.1f}}}\n",
        devices, succeeded, batch_size, connections, pipeline, target.starts_with("https"),
        emulator ? "in-process emulator" : target, elapsed, static_cast<double>(devices) / elapsed,
        summary.requests, static_cast<double>(summary.requests) / elapsed, p(0.5), p(0.9), p(0.99),
        p(0.999), static_cast<double>(latencies.max()) * ms,
        cpu / static_cast<double>(devices) * 1e6, rss_mib);
  } else {
    fmt::print("fleetcast bench: {} devices, {} per request, {} connections, pipeline {}, {}, {}\n",
               devices, batch_size, connections, pipeline,
               target.starts_with("https") ? "TLS" : "plain HTTP",
               emulator ? fmt::format("in-process emulator ({} threads, latency {} ms)",
                                      emulator->threads(), latency)
                        : target);
    fmt::print("  {} succeeded in {:.3f} s: {:.0f} devices/s, {:.0f} requests/s ({} requests)\n",
               succeeded, elapsed, static_cast<double>(devices) / elapsed,
               static_cast<double>(summary.requests) / elapsed, summary.requests);
    fmt::print(
        "  request latency: p50 {:.3f} ms, p90 {:.3f} ms, p99 {:.3f} ms, p99.9 {:.3f} ms, max "
        "{:.3f} ms\n",
        p(0.5), p(0.9), p(0.99), p(0.999), static_cast<double>(latencies.max()) * ms);
    fmt::print("  engine CPU: {:.3f} s per million devices; peak RSS {:.1f} MiB (process)\n",
               cpu / static_cast<double>(devices) * 1e6, rss_mib);
  }
  return succeeded == devices ? 0 : 1;
}

}  // namespace fleetcast::app
