// fleetcast: the command line. One parser (CLI11) for every subcommand:
// `--opt value` and `--opt=value`, `--`, `--version`, per-subcommand
// `--help`, and one error style: "fleetcast run: unknown option --shrd (did
// you mean --shard?)", exit 2, with a pointer to the subcommand's help.
#include "app/act.hpp"
#include "app/bench.hpp"
#include "app/check.hpp"
#include "app/daemon.hpp"
#include "app/dry_run.hpp"
#include "app/emulate.hpp"
#include "app/generate.hpp"
#include "app/run.hpp"
#include "app/say.hpp"
#include "core/job/suggest.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#ifndef FLEETCAST_VERSION
#define FLEETCAST_VERSION "unknown"
#endif

namespace {

using namespace fleetcast::app;
using fleetcast::operator_act;

constexpr std::string_view run_footer = R"(
exit status: 0 all devices succeeded (a dry run: all would be sent); 1 some
failed or were skipped, or the job failed on the way (resumable); 2 the job
is invalid and nothing was sent (also: the output folder is in use, or a
resume whose rollout changed); 3 aborted by the rollout guard; 4 cancelled
(signal, end of the time window). 1, 3 and 4: continue with --resume.)";

constexpr std::string_view emulate_footer = R"(
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
                         a token is refused with 5032 after N uses;
                         "retry_after_s": a 503's Retry-After; "echo_token": 1
                         echoes the Authorization value in the answer})";

constexpr std::string_view daemon_footer = R"(
Relative paths in a job are relative to DIR/incoming/; its outputs go to
DIR/done/NAME/ (completed) or DIR/failed/NAME/ (invalid, failed, aborted or
cancelled; reason.txt says why); output.dir is not used.

control:
  DIR/cancel/NAME (an empty file) or POST /jobs/NAME/cancel cancels a job.
  DIR/resume/NAME or POST /jobs/NAME/resume takes a job in done/ or failed/
  back to running/ and continues it as `fleetcast run --resume` would: the
  devices without a final result and those skipped (cancelled, job_failed,
  aborted) are sent; nothing with a result is sent again.
  DIR/retry-failed/NAME (holding REASON,... or nothing for the defaults) or
  POST /jobs/NAME/retry-failed[?reasons=REASON,...] also sends the devices
  that failed for those reasons again, as `--retry-failed` would.
  SIGTERM or SIGINT drains (requests in flight finish, unfinished jobs stay in
  running/ and resume at the next start) and exits 0; SIGHUP reloads.
admin port (config admin_listen, any address): GET /metrics (Prometheus),
GET /healthz, GET /readyz, GET /jobs (JSON); the POSTs above need the bearer
token of admin_token_file, or a loopback client when none is set.
logs: JSON lines on stderr: time, level, job, event, details.)";

// The closest of `names` to `word`, when close enough to be a typo.
std::string closest(std::string_view word, const std::vector<std::string>& names) {
  return fleetcast::closest_name(word, {names.begin(), names.end()});
}

int usage_error(std::string_view where, std::string_view message) {
  say("{}: {}\nSee '{} --help'.\n", where, message, where);
  return 2;
}

// What CLI11 left over (allow_extras): an unknown option or a stray argument.
int leftover_error(const CLI::App& sub, std::string_view where) {
  for (const auto& extra : sub.remaining()) {
    if (extra == "--") continue;
    if (!extra.starts_with("-"))
      return usage_error(where, fmt::format("unexpected argument \"{}\"", extra));
    const auto name = extra.substr(0, extra.find('='));
    std::vector<std::string> known{"--help"};
    for (const auto* o : sub.get_options())
      for (const auto& l : o->get_lnames()) known.push_back("--" + l);
    const auto guess = closest(name, known);
    return usage_error(
        where, guess.empty() ? fmt::format("unknown option {}", name)
                             : fmt::format("unknown option {} (did you mean {}?)", name, guess));
  }
  return 0;
}

// A whole number in [low, high], said plainly when it is not.
CLI::Validator whole(std::uint64_t low, std::uint64_t high = UINT64_MAX) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || p != text.data() + text.size() || text.empty())
          return fmt::format("\"{}\" is not a whole number", text);
        if (v < low || v > high) {
          return high == UINT64_MAX ? fmt::format("{} is below {}", v, low)
                                    : fmt::format("{} is not in {}..{}", v, low, high);
        }
        return {};
      },
      "N");
}

CLI::App* subcommand(CLI::App& app, std::string name, std::string description,
                     std::string_view footer = {}) {
  auto* sub = app.add_subcommand(std::move(name), std::move(description));
  sub->allow_extras();
  if (!footer.empty()) sub->footer(std::string(footer));
  return sub;
}

// Each subcommand: its options (add) and what it does once parsed (go).
struct run_command {
  CLI::App* run = nullptr;
  CLI::Option* retry = nullptr;
  CLI::Option* emulator_config = nullptr;
  std::string job_file, shard_text, shards_text, retry_reasons;
  bool dry = false;
  run_flags flags;

  void add(CLI::App& app) {
    run = subcommand(app, "run", "Send the job's command to its devices.", run_footer);
    run->add_option("JOB", job_file, "the job file (JSON)")->required();
    run->add_flag("--dry-run", dry,
                  "validate the job, read every device, print the batch plan and the counts; send "
                  "nothing");
    run->add_flag("--resume", flags.resume,
                  "continue a stopped run from its output folder: sends the devices without a "
                  "final result and those skipped (cancelled, job_failed, aborted); refused when "
                  "the device list, endpoint or command changed");
    retry = run->add_flag("--retry-failed", retry_reasons,
                          "with --resume's work, also send again the devices that failed for "
                          "these reasons (--retry-failed=R,...; default "
                          "transport_failed,missing_in_answer,batch_rejected; device_failed "
                          "only when named)")
                ->option_text("[=R,...]");
    run->add_flag("--emulate", flags.emulate,
                  "rehearse: send to an in-process emulator on a free loopback port instead of "
                  "the job's endpoint");
    emulator_config =
        run->add_option("--emulator-config", flags.emulator_config,
                        "that emulator's config (see fleetcast emulate --help); implies --emulate");
    run->add_flag("-q,--quiet", flags.quiet, "no progress line and no closing line (errors still)");
    run->add_flag(
        "--json", flags.json,
        "print the summary (summary.json's text, the whole rollout) on stdout at the end; with "
        "--dry-run, the plan as JSON (its phases' devices by cohort), the plan's lines on stderr");
    run->add_option("--shard", shard_text,
                    "only the devices of shard I of N (0 <= I < N): N processes with the same job "
                    "cover it exactly once");
    run->add_option(
           "--shards", shards_text,
           "shard JOB_COMPLETION_INDEX of N (the index a Kubernetes Indexed Job gives each "
           "pod)")
        ->excludes(run->get_option("--shard"));
  }
  int go(const std::string& where) {
    if (!shard_text.empty()) {
      std::string error;
      flags.shard = fleetcast::parse_shard(shard_text, error);
      if (!flags.shard) return usage_error(where, error);
    }
    if (!shards_text.empty()) {
      std::string error;
      flags.shard = fleetcast::shard_from_completion_index(
          shards_text, std::getenv("JOB_COMPLETION_INDEX"), error);
      if (!flags.shard) return usage_error(where, error);
    }
    if (retry->count() > 0) {
      flags.resume = true;
      // A bare flag (or "--retry-failed=") reads as "true": the defaults.
      flags.retry_failed = retry_reasons == "true" ? std::string() : retry_reasons;
    }
    if (emulator_config->count() > 0) flags.emulate = true;
    if (dry) return dry_run(job_file, flags.shard, flags.json);
    return run_job(job_file, flags);
  }
};

struct check_command {
  CLI::App* check_cmd = nullptr;
  std::string check_file, check_kind;
  void add(CLI::App& app) {
    check_cmd = subcommand(
        app, "check",
        "Validate a job file, a daemon config or an emulator config, reading neither devices nor "
        "tokens. Exit 0 valid, 2 not.");
    check_cmd->add_option("FILE", check_file, "the file (JSON)")->required();
    check_cmd->add_option("--as", check_kind, "what the file is (default: told by its fields)")
        ->check(CLI::IsMember({"job", "daemon", "emulator"}));
  }
  int go() { return check(check_file, check_kind); }
};

struct daemon_command {
  CLI::App* daemon_cmd = nullptr;
  daemon_flags dflags;
  std::string daemon_shard;
  void add(CLI::App& app) {
    daemon_cmd = subcommand(
        app, "daemon",
        "Run the jobs dropped into DIR/incoming/ (write a job elsewhere or under a dot name, then "
        "rename it to NAME.json in incoming/).",
        daemon_footer);
    daemon_cmd
        ->add_option(
            "--spool", dflags.spool,
            "the spool (incoming/ running/ done/ failed/ cancel/ resume/ retry-failed/ are "
            "created when missing); one daemon per spool")
        ->required();
    daemon_cmd->add_option("--config", dflags.config,
                           "the daemon's config (config/daemon.example.json); SIGHUP reloads it");
    daemon_cmd->add_option("--shard", daemon_shard,
                           "every job runs only the devices of shard I of N");
  }
  int go(const std::string& where) {
    if (!daemon_shard.empty()) {
      std::string error;
      dflags.shard = fleetcast::parse_shard(daemon_shard, error);
      if (!dflags.shard) return usage_error(where, error);
    }
    return daemon(dflags);
  }
};

struct emulate_command {
  CLI::App* emulate_cmd = nullptr;
  emulate_flags eflags;
  void add(CLI::App& app) {
    emulate_cmd = subcommand(
        app, "emulate",
        "Serve POST /v2/binding/enduserapi/batchControlDevice like the platform does, checking "
        "every rule and code of its reference page, with configurable per-device failures, "
        "latency, rate limiting and faults. GET /stats returns the counters. Stops on SIGINT or "
        "SIGTERM and prints the final counters. Each flag overrides the config file.",
        emulate_footer);
    emulate_cmd->add_option("--listen", eflags.listen,
                            "HOST:PORT to serve on (default 127.0.0.1:8443; port 0 = any)");
    emulate_cmd->add_option("--config", eflags.config_file,
                            "JSON config (see config/emulator.example.json)");
    emulate_cmd->add_flag("--plain", eflags.plain, "plain HTTP instead of HTTPS");
    emulate_cmd->add_option("--threads", eflags.threads, "server threads (default: the cores)")
        ->check(whole(0, 256));
    emulate_cmd->add_option("--seed", eflags.seed, "seed of every random choice (default 1)")
        ->check(whole(0));
    emulate_cmd
        ->add_option("--max-devices", eflags.max_devices,
                     "list-size limit, code 5312 above it (default 100)")
        ->check(whole(1, 1'000'000));
    emulate_cmd->add_option("--record", eflags.record,
                            "write one NDJSON line per executed device command");
    emulate_cmd->add_option("--cert-out", eflags.cert_out,
                            "where the generated self-signed certificate goes (default "
                            "fleetcast-emulator-cert.pem); give it to clients as their CA file");
  }
  int go() { return emulate(eflags); }
};

struct generate_command {
  CLI::App* generate_cmd = nullptr;
  generate_flags gflags;
  void add(CLI::App& app) {
    generate_cmd = subcommand(
        app, "generate-devices",
        "Write N devices as a CSV device list (header productKey,deviceKey,gatewayProductKey,"
        "gatewayDeviceKey) with deterministic, distinct keys.");
    generate_cmd->add_option("N", gflags.count, "how many devices")->required()->check(whole(0));
    generate_cmd->add_option("FILE", gflags.file, "where to write them (- = standard output)")
        ->required();
    generate_cmd
        ->add_option("--products", gflags.products, "spread devices over K products (default 3)")
        ->check(whole(1));
    generate_cmd->add_option("--gateway-every", gflags.gateway_every,
                             "every Mth device is a sub-device behind a gateway (0 = none, default "
                             "10)->check(whole(0)); 50 sub-devices share a gateway");
    generate_cmd
        ->add_option("--seed", gflags.seed, "a different seed gives different keys (default 1)")
        ->check(whole(0));
  }
  int go() { return generate_devices(gflags); }
};

struct bench_command {
  CLI::App* bench_cmd = nullptr;
  bench_flags bflags;
  bool bench_plain = false;
  void add(CLI::App& app) {
    bench_cmd = subcommand(
        app, "bench",
        "Roll a command out to a synthetic fleet with the real engine and report devices/s, "
        "requests/s, request latency p50/p90/p99/p99.9, the engine's CPU seconds per million "
        "devices, and peak RSS.");
    bench_cmd->add_option("--devices", bflags.devices, "fleet size (default 1000000)")
        ->check(whole(1));
    bench_cmd->add_option("--batch", bflags.batch, "devices per request (default 100)")
        ->check(whole(1, 100000));
    bench_cmd->add_option("--connections", bflags.connections, "keep-alive connections (default 8)")
        ->check(whole(1, 1024));
    bench_cmd->add_option("--pipeline", bflags.pipeline, "HTTP/1.1 pipeline depth (default 1)")
        ->check(whole(1, 64));
    bench_cmd->add_flag("--plain", bench_plain,
                        "plain HTTP instead of TLS (in-process emulator only)");
    bench_cmd
        ->add_option("--latency-ms", bflags.latency_ms,
                     "the emulator's added latency per request (default 0)")
        ->check(whole(0));
    bench_cmd
        ->add_option("--emulator-threads", bflags.emulator_threads,
                     "the in-process emulator's threads (default 1)")
        ->check(whole(1));
    bench_cmd->add_option("--target", bflags.target,
                          "another server instead of the in-process emulator");
    bench_cmd->add_option("--ca-file", bflags.ca_file, "the CA to trust for --target");
    bench_cmd->add_flag("--json", bflags.json, "one JSON object on stdout instead of text");
  }
  int go() {
    bflags.tls = !bench_plain;
    return bench(bflags);
  }
};

// approve, pause, continue DIR: an operator's act on a running rollout.
struct act_command {
  std::vector<std::pair<CLI::App*, operator_act>> subs;
  std::string dir, by;
  double timeout_s = 10;

  void add(CLI::App& app) {
    for (auto [name, act, what] :
         {std::tuple{"approve", operator_act::approve,
                     "Approve the phase of the rollout running in DIR that waits for an "
                     "approval (its gate's wait_for: \"approval\")."},
          std::tuple{"pause", operator_act::pause,
                     "Pause the rollout running in DIR: nothing more is sent, requests in flight "
                     "finish, the process stays up."},
          std::tuple{"continue", operator_act::resume,
                     "Continue the paused rollout running in DIR where it stopped."}}) {
      auto* sub = subcommand(app, name, what);
      sub->add_option("DIR", dir, "the rollout's output folder (output.dir)")->required();
      sub->add_option("--by", by,
                      "who asks, as recorded in DIR/operator.ndjson (default: user@host (uid))");
      sub->add_option("--timeout", timeout_s,
                      "seconds to wait for the running process's answer (default 10)");
      subs.emplace_back(sub, act);
    }
  }
  std::optional<int> go(CLI::App* sub) {
    for (auto [s, act] : subs)
      if (s == sub) return act_on_folder(act, dir, by, timeout_s);
    return std::nullopt;
  }
};

// An unknown command, said as such (CLI11 would say a subcommand is
// required); 0 when `first` is an option or a known command.
int unknown_command(CLI::App& app, std::string_view first) {
  if (first.starts_with("-")) return 0;
  std::vector<std::string> names;
  for (const auto* s : app.get_subcommands({})) names.push_back(s->get_name());
  if (std::find(names.begin(), names.end(), first) != names.end()) return 0;
  const auto guess = closest(first, names);
  return usage_error("fleetcast", guess.empty() ? fmt::format("unknown command \"{}\"", first)
                                                : fmt::format("unknown command \"{}\" (did "
                                                              "you mean {}?)",
                                                              first, guess));
}

// Parses the command line: -1 when a subcommand is to run, else the exit
// status (help, version, a usage error said).
int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (app.get_subcommands().empty()) {
      fmt::print("{}", app.help());
    } else {
      fmt::print("{}", app.get_subcommands().front()->help("fleetcast"));
    }
    return 0;
  } catch (const CLI::CallForVersion& e) {
    fmt::print("{}\n", e.what());
    return 0;
  } catch (const CLI::ParseError& e) {
    const auto subs = app.get_subcommands();
    const std::string where =
        subs.empty() ? "fleetcast" : fmt::format("fleetcast {}", subs.front()->get_name());
    // A mistyped option explains a missing one better than the other way round.
    if (!subs.empty())
      if (const int rc = leftover_error(*subs.front(), where)) return rc;
    return usage_error(where, e.what());
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Sends one control command to a fleet of devices through the platform's "
      "batchControlDevice endpoint.",
      "fleetcast"};
  app.set_version_flag("--version", "fleetcast " FLEETCAST_VERSION);
  app.require_subcommand(1, 1);
  app.footer("Run 'fleetcast COMMAND --help' for a command's options.");
  run_command run;
  check_command check_c;
  daemon_command daemon_c;
  emulate_command emulate_c;
  generate_command generate_c;
  bench_command bench_c;
  act_command act_c;
  run.add(app);
  check_c.add(app);
  daemon_c.add(app);
  emulate_c.add(app);
  generate_c.add(app);
  bench_c.add(app);
  act_c.add(app);
  app.add_subcommand("help", "this text")->allow_extras();

  if (argc < 2) {
    say("{}", app.help());
    return 2;
  }
  if (const int rc = unknown_command(app, argv[1])) return rc;
  if (const int rc = parse(app, argc, argv); rc >= 0) return rc;
  CLI::App* const sub = app.get_subcommands().front();
  const auto where = fmt::format("fleetcast {}", sub->get_name());
  if (sub->get_name() == "help") {
    fmt::print("{}", app.help());
    return 0;
  }
  if (const int rc = leftover_error(*sub, where)) return rc;
  if (sub == run.run) return run.go(where);
  if (sub == check_c.check_cmd) return check_c.go();
  if (sub == daemon_c.daemon_cmd) return daemon_c.go(where);
  if (sub == emulate_c.emulate_cmd) return emulate_c.go();
  if (sub == generate_c.generate_cmd) return generate_c.go();
  if (const auto rc = act_c.go(sub)) return *rc;
  return bench_c.go();
}
