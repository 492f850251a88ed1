// libFuzzer target: the emulator's request handling, bytes in, answer out.
// The input is split into authorization, target and body at the first two
// newlines; faults are on so that every path is reachable.
#include <fleetcast/core/emulator/emulator_state.hpp>
#include "core/emulator/emulator_session.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fleetcast::emulator_state state = [] {
    fleetcast::emulator_config c;
    c.max_devices = 20;
    c.products = {"p1", "p2"};
    c.device_failure_ratio = 0.2;
    c.faults.code_5340_ratio = 0.05;
    c.faults.missing_device_ratio = 0.05;
    return fleetcast::emulator_state(c);
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto take_line = [&in] {
    const auto nl = in.find('\n');
    const auto line = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    return line;
  };
  const auto auth = take_line();
  const auto target = take_line();
  fleetcast::emulator_session session(state);
  fleetcast::emulator_request req;
  req.method = "POST";
  req.target = target.empty() ? fleetcast::batch_control_path : target;
  if (!auth.empty()) req.authorization = auth;
  req.body = in;
  const auto& reply = session.handle(req, 1000);
  if (reply.status < 100 || reply.status > 599) std::abort();
  (void)session.body();
  session.answered();
  return 0;
}
