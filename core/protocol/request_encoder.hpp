// request_encoder: the batchControlDevice JSON body for one batch. The
// command's part is encoded once; each batch then appends only its devices
// into a caller's reused buffer, so encoding allocates nothing per device.
#pragma once

#include <fleetcast/core/dispatch/batch.hpp>
#include <fleetcast/core/protocol/command.hpp>
#include <fleetcast/core/protocol/pkdk.hpp>

#include <span>
#include <string>

namespace fleetcast {

class request_encoder {
 public:
  // The command should have passed validate_command; absent optional fields
  // are left out of the body.
  explicit request_encoder(const command& cmd);

  // Appends the body for these devices to `out` (which is not cleared).
  void encode(const batch& devices, std::string& out) const;
  void encode(std::span<const pkdk_view> devices, std::string& out) const;

  // Bytes of the body without any device, for size estimates.
  std::size_t fixed_size() const noexcept { return prefix_.size() + 2; }

 private:
  std::string prefix_;  // {"type":..,...,"deviceList":[
};

// Appends one device as the API's pkdk object; gateway keys only when set.
void append_pkdk_json(std::string& out, const pkdk_view& device);
// The same as raw writes (json_escape.hpp): the most bytes it takes, and the
// write into room for them.
std::size_t pkdk_json_bound(const pkdk_view& device) noexcept;
char* write_pkdk_json(char* w, const pkdk_view& device) noexcept;

}  // namespace fleetcast
