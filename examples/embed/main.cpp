// Embedding fleetcast: one command to a fleet from your own C++ service.
// Here a local emulator stands in for the platform; point the job's
// endpoint at the real one (and drop extra_ca_pem) in production.
#include "core/device_stream.hpp"
#include "core/job_parser.hpp"
#include "net/emulator.hpp"
#include "net/rollout.hpp"

#include <iostream>
#include <sstream>

int main() {
  fleetcast::emulator_config platform;
  platform.listen = "127.0.0.1:0";
  fleetcast::net::emulator emulator(platform);

  // The job: the same schema as a job file (unknown fields are errors).
  const std::string text = R"({"endpoint": ")" + emulator.url() + R"(",
    "auth": {"token_command": ["echo", "Bearer example-token"]},
    "command": {"type": 2, "data": "[{\"switch\":true}]"},
    "devices": {"file": "unused.csv"}, "batch": {"max_devices": 2}})";
  auto parsed = fleetcast::parse_job(text, "embedded-job.json");
  if (!parsed.job) {
    for (const auto& e : parsed.errors) std::cerr << e.describe("job") << '\n';
    return 2;
  }

  // Any device source: here an in-memory CSV.
  std::istringstream csv("productKey,deviceKey\np1,lamp-1\np1,lamp-2\np1,lamp-3\n");
  fleetcast::device_stream devices(
      fleetcast::make_device_reader(fleetcast::device_format::csv, csv));

  // Each device's result, exactly once, as it comes.
  struct print_results : fleetcast::result_sink {
    void on_result(const fleetcast::device_result& r) override {
      std::cout << r.device.device_key << ": " << fleetcast::to_string(r.status()) << " ("
                << fleetcast::to_string(r.reason) << ")\n";
    }
  } sink;

  fleetcast::net::rollout_options options;
  options.extra_ca_pem = emulator.certificate_pem();  // trust the local emulator
  fleetcast::net::rollout rollout(*parsed.job, devices, sink, options);
  // run() blocks; run it on a thread of yours and call rollout.cancel() to stop.
  const fleetcast::run_summary summary = rollout.run();
  std::cout << summary.count_of(fleetcast::device_status::succeeded) << " of " << summary.records
            << " devices succeeded in " << summary.requests << " requests\n";
  return summary.exit_code();
}
