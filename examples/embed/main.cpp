// Embedding fleetcast: one command to a fleet from your own C++ service, on
// your own executor (here a thread pool: the engine serialises its own
// work), with the token from your own secret store (here held in memory)
// and the devices from memory. A local emulator stands in for the
// platform; point the endpoint at the real one (and drop extra_ca_pem) in
// production. docs/library.md is the reference.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/net/client/rollout.hpp>
#include <fleetcast/net/server/emulator.hpp>

#include <boost/asio/thread_pool.hpp>

#include <cstdlib>
#include <iostream>
#include <sstream>

int main() {
  fleetcast::emulator_config platform;
  platform.listen = "127.0.0.1:0";
  fleetcast::net::emulator emulator(platform);

  // The job, built in code: every setting starts at its documented default.
  fleetcast::job job;
  job.name = "embedded-example";
  if (auto problem = fleetcast::parse_endpoint(emulator.url(), job.endpoint)) {
    std::cerr << "endpoint: " << *problem << '\n';
    return 2;
  }
  job.endpoint.url = emulator.url();
  job.auth.kind = fleetcast::auth_config::source::token_env;  // for validate(); the token
  job.auth.token_env = "UNUSED";                              // comes from options.token
  job.cmd.type = 2;                                           // a property command
  job.cmd.data = R"([{"switch":true}])";
  job.batch.max_devices = 2;
  // The job file's rules, with its messages and the reference page's codes.
  if (const auto errors = fleetcast::validate(job); !errors.empty()) {
    for (const auto& e : errors) std::cerr << e.describe("job") << '\n';
    return 2;
  }

  // Any device source: here an in-memory CSV.
  std::istringstream csv("productKey,deviceKey\np1,lamp-1\np1,lamp-2\np1,lamp-3\n");
  fleetcast::device_stream devices(
      fleetcast::make_device_reader(fleetcast::device_format::csv, csv));

  // Each device's result, exactly once, as it comes: called on the engine's
  // strand, one at a time (whichever pool thread runs it).
  struct print_results : fleetcast::result_sink {
    void on_result(const fleetcast::device_result& r) override {
      std::cout << r.device.device_key << ": " << fleetcast::to_string(r.status()) << " ("
                << fleetcast::to_string(r.reason) << ")\n";
    }
  } sink;

  fleetcast::net::rollout_options options;
  options.extra_ca_pem = emulator.certificate_pem();  // trust the local emulator
  options.system_trust_store = false;
  options.token = "Bearer example-token";  // or options.token_provider: asked when needed

  // On your executor, beside your own work; bind a cancellation slot to
  // the handler to stop it (asio::bind_cancellation_slot), or co_await it
  // with asio::as_tuple(asio::use_awaitable).
  boost::asio::thread_pool pool(2);
  fleetcast::net::rollout rollout(pool.get_executor(), job, devices, sink, options);
  int status = 1;
  rollout.async_run(
      [&status](boost::system::error_code ec, fleetcast::net::rollout_outcome outcome) {
        if (ec) {  // nothing was sent: what could not be used, and its kind
          std::cerr << "not started: " << outcome.startup_error << " (" << ec.message() << ")\n";
          return;
        }
        const auto& s = outcome.summary;
        std::cout << s.count_of(fleetcast::device_status::succeeded) << " of " << s.records
                  << " devices succeeded in " << s.requests << " requests\n";
        status = s.exit_code();
      });
  pool.join();  // the pool has work until the completion handler ran
  return status;
}
