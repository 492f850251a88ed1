// say: a line for the operator on standard error. Every human line of the
// command line goes through it, so that no secret a peer echoed reaches the
// terminal (secret_registry), whatever text it was built from.
#pragma once

#include <fleetcast/core/output/secret_registry.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <utility>

namespace fleetcast::app {

template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  std::string text = fmt::format(format, std::forward<Args>(args)...);
  secret_registry::process().redact(text);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace fleetcast::app
