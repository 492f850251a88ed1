// The emulator the library's tests run against: TLS on a free loopback
// port, one thread.
#pragma once

#include <fleetcast/core/emulator/emulator_config.hpp>

namespace fleetcast::test {

inline emulator_config loopback_emulator() {
  emulator_config c;
  c.listen = "127.0.0.1:0";
  c.threads = 1;
  return c;
}

}  // namespace fleetcast::test
