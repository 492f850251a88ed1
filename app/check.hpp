// `fleetcast check FILE`: validates a job file, a daemon config or an
// emulator config without reading devices or tokens.
#pragma once

#include <string>

namespace fleetcast::app {

// `kind`: "job", "daemon", "emulator", or "" (told by the file's fields).
// Prints every problem, each naming the file and the field; returns 0 when
// the file is valid, 2 when it is not or cannot be read.
int check(const std::string& file, const std::string& kind);

}  // namespace fleetcast::app
