// libFuzzer target: an answer body from the network, through the decoder and
// the accountant (every device of the batch gets exactly one outcome).
#include <fleetcast/core/dispatch/batch.hpp>
#include "core/dispatch/accountant.hpp"
#include "core/protocol/response_decoder.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {
struct counting_sink final : fleetcast::result_sink {
  std::size_t results = 0;
  void on_result(const fleetcast::device_result&) override { ++results; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fleetcast::response_decoder decoder(1 << 20);
  static fleetcast::batch devices = [] {
    fleetcast::batch b;
    b.add(0, {"p1", "d1", "", ""}, 0, false);
    b.add(1, {"p1", "d2", "g", "gd"}, 0, false);
    b.add(2, {"p2", "d1", "", ""}, 0, false);
    return b;
  }();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (decoder.decode(body)) return 0;
  counting_sink sink;
  fleetcast::accountant acct;
  acct.account_answer(devices, decoder.response(), sink);
  if (sink.results != devices.size()) std::abort();  // every device exactly once
  return 0;
}
