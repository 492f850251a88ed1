// The emulator's message subscription (see ack_emitter.hpp).
#include "net/server/ack_emitter.hpp"

#include "core/protocol/json_escape.hpp"

#include <stdexcept>

namespace fleetcast::net {

namespace {
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ack_emitter::ack_emitter(const emulator_acks& acks, std::function<void(std::string)> to_amqp)
    : to_amqp_(std::move(to_amqp)) {
  if (!acks.ndjson.empty()) {
    file_ = std::fopen(acks.ndjson.c_str(), "a");
    if (!file_) throw std::runtime_error(acks.ndjson + ": cannot open the acks file for writing");
  }
  thread_ = std::thread([this] { run(); });
}

ack_emitter::~ack_emitter() {
  stop();
  if (file_) std::fclose(file_);
}

void ack_emitter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::uint64_t ack_emitter::sent() const {
  std::lock_guard lock(mutex_);
  return sent_;
}

void ack_emitter::write_locked(const std::string& line) {
  // The time is the platform's own, stamped as it sends: line holds the
  // message with '\x01' where createdAt and sentAt go.
  const auto now = std::to_string(wall_ms());
  std::string text;
  text.reserve(line.size() + 2 * now.size());
  for (const char c : line) {
    if (c == '\x01')
      text += now;
    else
      text += c;
  }
  if (file_) std::fwrite(text.data(), 1, text.size(), file_);
  if (to_amqp_) {
    text.pop_back();  // the body without the line's end
    to_amqp_(std::move(text));
  }
  ++sent_;
}

void ack_emitter::issued(std::string_view product_key, std::string_view device_key,
                         std::string_view gateway_product_key, std::string_view gateway_device_key,
                         std::string_view ticket, const emulator_ack_plan& plan) {
  if (plan.what == emulator_ack_plan::fate::lost) return;
  // The message as documented (JSON escaping never yields a '\x01' byte).
  std::string line = "{\"productKey\":";
  append_json_string(line, product_key);
  line += ",\"deviceKey\":";
  append_json_string(line, device_key);
  line += ",\"type\":\"REQACK\",\"createdAt\":\x01,\"ticket\":";
  append_json_string(line, ticket);
  if (!gateway_product_key.empty()) {
    line += ",\"gateway\":{\"productKey\":";
    append_json_string(line, gateway_product_key);
    line += ",\"deviceKey\":";
    append_json_string(line, gateway_device_key);
    line += "}";
  }
  line += ",\"data\":{\"sentAt\":\x01,\"status\":\"";
  line += to_string(plan.what);
  line += "\"}}\n";
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  if (plan.early) {
    write_locked(line);
    if (file_) std::fflush(file_);  // in the file before the answer is written
  } else {
    queue_.push({now + std::chrono::milliseconds(plan.delay_ms), seq_++, line});
  }
  if (plan.second_ms)
    queue_.push({now + std::chrono::milliseconds(plan.second_ms), seq_++, std::move(line)});
  wake_.notify_one();
}

void ack_emitter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stopping_) break;
    if (queue_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto at = queue_.top().at;
    if (at > std::chrono::steady_clock::now()) {
      wake_.wait_until(lock, at);
      continue;
    }
    while (!queue_.empty() && queue_.top().at <= std::chrono::steady_clock::now()) {
      write_locked(queue_.top().line);
      queue_.pop();
    }
    if (file_) std::fflush(file_);
  }
  if (file_) std::fflush(file_);
}

}  // namespace fleetcast::net
