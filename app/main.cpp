// fleetcast: the command line. Parses arguments and hands over to the
// library; see `fleetcast --help`.
#include "app/dry_run.hpp"
#include "app/emulate.hpp"

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
  run JOB.json --dry-run   validate the job, read every device, print the
                           batch plan and the counts; sends nothing
  emulate [options]        serve a local emulator of the endpoint (see
                           fleetcast emulate --help)
  help                     this text

exit status of run: 0 all devices would be sent (or succeeded), 1 some
records are skipped (or failed), 2 the job is invalid, 3 aborted or cancelled
)";

int run(const std::vector<std::string_view>& args) {
  std::string job_file;
  bool dry = false;
  for (auto a : args) {
    if (a == "--dry-run") {
      dry = true;
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
  if (!dry) {
    fmt::print(stderr,
               "fleetcast run: this build cannot send yet (the dispatch engine is not part of "
               "it); use --dry-run to validate the job and see its plan\n");
    return 2;
  }
  return fleetcast::app::dry_run(job_file);
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
  fmt::print(stderr, "fleetcast: unknown command \"{}\"\n{}", args[0], usage);
  return 2;
}
