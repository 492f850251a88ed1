// token_source: the Authorization value for a job, from a file (re-read
// when asked, so an outside agent can rotate it), an environment variable,
// or a command's standard output. The token never appears in a message.
#pragma once

#include "core/job.hpp"

#include <string>

namespace fleetcast::net {

class token_source {
 public:
  explicit token_source(auth_config config) : config_(std::move(config)) {}

  // Reads the token (again). Throws std::runtime_error naming the source
  // (file, variable, command) and why, never the token.
  std::string fetch();

  // For a token file: whether it changed (modified, replaced) since the last
  // fetch(); always false for the other sources.
  bool file_changed() const;

 private:
  struct file_identity {
    long long mtime_ns = 0, size = 0, inode = 0;
    friend bool operator==(const file_identity&, const file_identity&) = default;
  };
  file_identity identity() const;

  auth_config config_;
  file_identity seen_;
};

}  // namespace fleetcast::net
