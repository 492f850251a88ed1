// The emulate command (see emulate.hpp).
#include "app/emulate.hpp"

#include "app/job_files.hpp"
#include "core/emulator_session.hpp"
#include "net/emulator.hpp"

#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

namespace fleetcast::app {
namespace {

constexpr std::string_view usage = R"(usage: fleetcast emulate [options]

Serves POST /v2/binding/enduserapi/batchControlDevice like the platform does,
checking every rule and code of its reference page, with configurable
per-device failures, latency, rate limiting and faults. GET /stats returns the
counters. Stops on SIGINT or SIGTERM and prints the final counters.

options (each overrides the config file):
  --listen HOST:PORT   address to serve on (default 127.0.0.1:8443; port 0 = any)
  --config FILE        JSON config (see config/emulator.example.json)
  --plain              plain HTTP instead of HTTPS
  --threads N          server threads (default: the number of cores)
  --seed N             seed of every random choice (default 1)
  --max-devices N      list-size limit, code 5312 above it (default 100)
  --record FILE        write one NDJSON line per executed device command
  --cert-out FILE      where the generated self-signed certificate goes
                       (default fleetcast-emulator-cert.pem); give it to
                       clients as their CA file

config file keys (snake_case; unknown keys are errors):
  listen, threads, seed, max_devices, record   as the flags above
  tls                   {"cert": FILE, "key": FILE}, false (plain HTTP), or
                        absent/null (self-signed, written to self_signed_out)
  self_signed_out       as --cert-out
  tokens                accepted Authorization values; [] = any non-empty
  products              productKeys the user may command (5041); [] = all
  max_body_bytes        larger bodies get HTTP 413 (default 1048576)
  device_failure_ratio  share of devices in failureList (default 0)
  failure_messages      their messages (default device offline, device not found)
  latency_ms            N, or {"fixed": N, "random": M} (fixed + 0..M)
  rate_limit_rps        requests/s above which HTTP 429 + Retry-After (0 = none)
  faults                {"reset_ratio", "http_502_ratio", "http_503_ratio",
                         "code_5340_ratio", "stall_ratio", "missing_device_ratio":
                         shares of requests (0..1); "stall_ms": how long a stall
                         lasts; "close_after_requests": Connection: close on the
                         Nth answer of a connection; "token_expires_after_requests":
                         a token is refused with 5032 after N uses}
)";

template <typename T>
bool number(std::string_view text, T& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

int emulate(const std::vector<std::string_view>& args) {
  emulator_config flags;
  std::optional<std::string> config_file;
  struct {
    std::optional<std::string> listen, record, cert_out;
    std::optional<unsigned> threads;
    std::optional<std::uint64_t> seed;
    std::optional<std::uint32_t> max_devices;
    bool plain = false;
  } set;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    const auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= args.size()) {
        fmt::print(stderr, "fleetcast emulate: {} needs a value\n", a);
        return std::nullopt;
      }
      return args[++i];
    };
    std::optional<std::string_view> v;
    if (a == "--help" || a == "-h") {
      fmt::print("{}", usage);
      return 0;
    } else if (a == "--plain") {
      set.plain = true;
    } else if (a == "--listen" || a == "--config" || a == "--record" || a == "--cert-out") {
      if (!(v = value())) return 2;
      auto& target = a == "--listen"     ? set.listen
                     : a == "--record"   ? set.record
                     : a == "--cert-out" ? set.cert_out
                                         : config_file;
      target = std::string(*v);
    } else if (a == "--threads" || a == "--seed" || a == "--max-devices") {
      if (!(v = value())) return 2;
      bool ok;
      if (a == "--threads") {
        unsigned n = 0;
        ok = number(*v, n) && n <= 256;
        set.threads = n;
      } else if (a == "--seed") {
        std::uint64_t n = 0;
        ok = number(*v, n);
        set.seed = n;
      } else {
        std::uint32_t n = 0;
        ok = number(*v, n) && n >= 1;
        set.max_devices = n;
      }
      if (!ok) {
        fmt::print(stderr, "fleetcast emulate: {} {}: not a valid number\n", a, *v);
        return 2;
      }
    } else {
      fmt::print(stderr, "fleetcast emulate: unknown option {}\n{}", a, usage);
      return 2;
    }
  }

  emulator_config config;
  if (config_file) {
    std::string text, error;
    if (!read_text_file(*config_file, text, error)) {
      fmt::print(stderr, "fleetcast emulate: {}\n", error);
      return 2;
    }
    auto parsed = parse_emulator_config(text, *config_file);
    if (!parsed.config) {
      for (const auto& e : parsed.errors)
        fmt::print(stderr, "fleetcast emulate: {}: {}\n", *config_file, e);
      return 2;
    }
    config = std::move(*parsed.config);
  }
  if (set.listen) config.listen = *set.listen;
  if (set.record) config.record = *set.record;
  if (set.cert_out) config.self_signed_out = *set.cert_out;
  if (set.threads) config.threads = *set.threads;
  if (set.seed) config.seed = *set.seed;
  if (set.max_devices) config.max_devices = *set.max_devices;
  if (set.plain) config.tls = false;

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::optional<net::emulator> server;
  try {
    server.emplace(config);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fleetcast emulate: {}\n", e.what());
    return 2;
  }
  if (server->tls() && config.cert_file.empty()) {
    std::ofstream out(config.self_signed_out, std::ios::binary | std::ios::trunc);
    out << server->certificate_pem();
    if (!out) {
      fmt::print(stderr, "fleetcast emulate: {}: cannot write the certificate\n",
                 config.self_signed_out);
      return 2;
    }
    fmt::print(
        stderr,
        "fleetcast emulate: self-signed certificate for localhost, 127.0.0.1 and ::1 in {}\n",
        config.self_signed_out);
  }
  fmt::print(stderr, "fleetcast emulate: serving {}{} (threads {}, seed {}, max devices {})\n",
             server->url(), batch_control_path, server->threads(), config.seed, config.max_devices);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server->stop();
  fmt::print(stderr, "fleetcast emulate: stopped by {}; counters: {}",
             sig == SIGINT ? "SIGINT" : "SIGTERM", server->state().stats_json());
  return 0;
}

}  // namespace fleetcast::app
