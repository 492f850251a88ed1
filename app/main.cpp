// fleetcast: the command line. Parses arguments and hands over to the
// library; see `fleetcast --help`.
#include "app/bench.hpp"
#include "app/daemon.hpp"
#include "app/dry_run.hpp"
#include "app/emulate.hpp"
#include "app/generate.hpp"
#include "app/run.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view usage = R"(usage: fleetcast <command> [options]

Sends one control command to a fleet of devices through the platform's
batchControlDevice endpoint.

commands:
  run JOB.json [options]   send the job's command to its devices
      --dry-run            validate the job, read every device, print the
                           batch plan and the counts; send nothing
      --resume             continue a stopped run from its output folder:
                           sends the devices without a final result and
                           those skipped (cancelled, job_failed, aborted);
                           refused when the device list, endpoint or
                           command changed
      --retry-failed[=R,...]
                           with --resume's work, also send again the devices
                           that failed for these reasons (default
                           transport_failed,missing_in_answer,batch_rejected;
                           device_failed only when named)
      --emulate            rehearse: send to an in-process emulator on a free
                           loopback port instead of the job's endpoint
      --emulator-config F  that emulator's config (see fleetcast emulate --help)
      --shard I/N          only the devices of shard I of N (0 <= I < N): N
                           processes with the same job cover it exactly once
  daemon --spool DIR [options]
                           run jobs dropped into DIR/incoming/ (see
                           fleetcast daemon --help)
  emulate [options]        serve a local emulator of the endpoint (see
                           fleetcast emulate --help)
  generate-devices N FILE  write a synthetic fleet of N devices (CSV)
  bench [options]          a fleet-wide rollout benchmark (fleetcast bench --help)
  help                     this text

exit status of run: 0 all devices succeeded (a dry run: would be sent); 1
some failed or were skipped, or the job failed on the way (resumable); 2 the
job is invalid and nothing was sent (also: the output folder is in use, or a
resume whose rollout changed); 3 aborted by the rollout guard; 4 cancelled
(signal, end of the time window). 1, 3 and 4: continue with --resume.
)";

int run(const std::vector<std::string_view>& args) {
  std::string job_file;
  bool dry = false;
  fleetcast::app::run_flags flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    if (a == "--dry-run") {
      dry = true;
    } else if (a == "--resume") {
      flags.resume = true;
    } else if (a == "--retry-failed" || a.starts_with("--retry-failed=")) {
      flags.resume = true;
      flags.retry_failed = std::string(a.size() > 15 ? a.substr(15) : std::string_view());
    } else if (a == "--emulate") {
      flags.emulate = true;
    } else if (a == "--emulator-config") {
      if (i + 1 >= args.size()) {
        fmt::print(stderr, "fleetcast run: --emulator-config needs a file\n");
        return 2;
      }
      flags.emulate = true;
      flags.emulator_config = std::string(args[++i]);
    } else if (a == "--shard") {
      std::string error;
      if (i + 1 >= args.size()) {
        fmt::print(stderr, "fleetcast run: --shard needs I/N\n");
        return 2;
      }
      flags.shard = fleetcast::parse_shard(args[++i], error);
      if (!flags.shard) {
        fmt::print(stderr, "fleetcast run: {}\n", error);
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      fmt::print("{}", usage);
      return 0;
    } else if (a.starts_with("-")) {
      fmt::print(stderr, "fleetcast run: unknown option {}\n", a);
      return 2;
    } else if (job_file.empty()) {
      job_file = std::string(a);
    } else {
      fmt::print(stderr, "fleetcast run: one job file at a time (got {} and {})\n", job_file, a);
      return 2;
    }
  }
  if (job_file.empty()) {
    fmt::print(stderr, "fleetcast run: missing JOB.json\n{}", usage);
    return 2;
  }
  if (dry) return fleetcast::app::dry_run(job_file, flags.shard);
  return fleetcast::app::run_job(job_file, flags);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    fmt::print(args.empty() ? stderr : stdout, "{}", usage);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "run") return run({args.begin() + 1, args.end()});
  if (args[0] == "emulate") return fleetcast::app::emulate({args.begin() + 1, args.end()});
  if (args[0] == "daemon") return fleetcast::app::daemon({args.begin() + 1, args.end()});
  if (args[0] == "bench") return fleetcast::app::bench({args.begin() + 1, args.end()});
  if (args[0] == "generate-devices") {
    return fleetcast::app::generate_devices({args.begin() + 1, args.end()});
  }
  fmt::print(stderr, "fleetcast: unknown command \"{}\"\n{}", args[0], usage);
  return 2;
}
