// fleetcast::core alone: a job from text, its checks, a device list from
// memory; no network, no OpenSSL, no Proton.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include <fleetcast/core/protocol/api_errc.hpp>

#include <iostream>
#include <sstream>

int main() {
  const auto parsed = fleetcast::parse_job(
      R"({"endpoint":"https://api.example.com","auth":{"token_env":"T"},
          "command":{"type":2,"data":"[{\"switch\":true}]"},"devices":{"file":"d.csv"}})",
      "/tmp/job.json");
  if (!parsed.job) {
    for (const auto& e : parsed.errors) std::cerr << e.describe("job") << '\n';
    return 1;
  }
  std::istringstream csv("productKey,deviceKey\np1,a\np1,b\np2,\n");
  fleetcast::device_stream devices(
      fleetcast::make_device_reader(fleetcast::device_format::csv, csv));
  fleetcast::device_record r;
  fleetcast::record_kind kind;
  int good = 0, bad = 0;
  while (devices.next(r, kind)) (kind == fleetcast::record_kind::device ? good : bad)++;
  const boost::system::error_code code = fleetcast::api_errc::token_verification_failed;
  std::cout << "core only: " << good << " devices, " << bad << " refused; " << code.value()
            << " is " << code.message() << " (" << code.category().name() << ")\n";
  return good == 2 && bad == 1 ? 0 : 1;
}
