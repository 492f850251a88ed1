// A plugin with fleetcast linked in: one rollout of `n` devices from memory
// against a local emulator, with a token held in memory.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>

#include <sstream>
#include <string>

extern "C" __attribute__((visibility("default"))) int fleetcast_plugin_rollout(int n) {
  fleetcast::emulator_config platform;
  platform.listen = "127.0.0.1:0";
  platform.threads = 1;
  fleetcast::net::emulator emulator(platform);
  fleetcast::job job;
  if (fleetcast::parse_endpoint(emulator.url(), job.endpoint)) return -1;
  job.endpoint.url = emulator.url();
  job.cmd.type = 2;
  job.cmd.data = R"([{"switch":true}])";
  std::string csv = "productKey,deviceKey\n";
  for (int i = 0; i < n; ++i) csv += "p1,plugin-" + std::to_string(i) + "\n";
  std::istringstream in(csv);
  fleetcast::device_stream devices(
      fleetcast::make_device_reader(fleetcast::device_format::csv, in));
  struct count : fleetcast::result_sink {
    int succeeded = 0;
    void on_result(const fleetcast::device_result& r) override {
      succeeded += r.status() == fleetcast::device_status::succeeded;
    }
  } sink;
  fleetcast::net::rollout_options options;
  options.extra_ca_pem = emulator.certificate_pem();
  options.system_trust_store = false;
  options.token = "Bearer plugin-token";
  fleetcast::net::rollout rollout(job, devices, sink, options);
  try {
    rollout.run();
  } catch (const std::exception&) {
    return -2;
  }
  return sink.succeeded;
}
