// ack_emitter: the emulator's message subscription. Each ticket issued
// becomes a REQACK (or two, or none) due at the time its plan says, handed
// out by a thread of its own when it comes due (an NDJSON line appended to
// the acks file, and/or a message queued on the AMQP listener); an early
// one goes at once, before the answer leaves.
#pragma once

#include <fleetcast/core/emulator/emulator_config.hpp>
#include <fleetcast/core/emulator/emulator_state.hpp>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

namespace fleetcast::net {

class ack_emitter final : public emulator_ack_sink {
 public:
  // Opens acks.ndjson for appending (when named); throws
  // std::runtime_error when it cannot. `to_amqp` (may be empty) takes each
  // message's body as it comes due.
  ack_emitter(const emulator_acks& acks, std::function<void(std::string)> to_amqp);
  ~ack_emitter() override;
  void issued(std::string_view product_key, std::string_view device_key,
              std::string_view gateway_product_key, std::string_view gateway_device_key,
              std::string_view ticket, const emulator_ack_plan& plan) override;
  // Writes what is due, then stops the thread (what is not due yet is dropped).
  void stop();
  std::uint64_t sent() const;

 private:
  struct due {
    std::chrono::steady_clock::time_point at;
    std::uint64_t seq;
    std::string line;
    bool operator>(const due& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void run();
  void write_locked(const std::string& line);

  std::FILE* file_ = nullptr;
  std::function<void(std::string)> to_amqp_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::priority_queue<due, std::vector<due>, std::greater<>> queue_;
  std::uint64_t seq_ = 0, sent_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fleetcast::net
