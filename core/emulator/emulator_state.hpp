// emulator_state: what all connections of one emulator share: its config,
// counters, token uses, the request-rate bucket, the ticket sequence, the
// devices in flight per gateway, and the record. Thread-safe. Time is passed
// in (milliseconds on a steady clock), never read here.
#pragma once

#include <fleetcast/core/emulator/emulator_config.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fleetcast {

// Receives record lines (NDJSON, one per executed device command), a whole
// request's lines at a time.
class emulator_record_sink {
 public:
  virtual ~emulator_record_sink() = default;
  virtual void write(std::string_view lines) = 0;
};

// Receives every ticket issued (a device's command executed), with what
// the subscription is to do about it (emulator_config's acks).
class emulator_ack_sink {
 public:
  virtual ~emulator_ack_sink() = default;
  virtual void issued(std::string_view product_key, std::string_view device_key,
                      std::string_view gateway_product_key, std::string_view gateway_device_key,
                      std::string_view ticket, const emulator_ack_plan& plan) = 0;
};

enum class emulator_counter : std::size_t {
  requests,  // every HTTP request read
  api_requests,
  devices,     // device commands executed
  succeeded,   // in successList
  failed,      // in failureList
  unreported,  // executed but named in neither list (missing_device_ratio)
  http_400,
  http_404,
  http_405,
  http_413,
  http_429,
  http_431,
  http_502,
  http_503,
  code_5106,
  code_5032,
  code_5041,
  code_5311,
  code_5312,
  code_5340,
  code_validation,  // 5070-5075, 5328-5331 and fleetcast's extra rules
  resets,
  stalls,
  closes,
  tokens_expired,
  token_refreshes,  // refresh tokens taken
  refresh_refused,  // a refresh token used before, or empty
  connections,      // TCP connections accepted
  tls_handshakes,   // TLS handshakes completed (a resumed session counts too)
  count_
};

class emulator_state {
 public:
  explicit emulator_state(emulator_config config, emulator_record_sink* record = nullptr);

  const emulator_config& config() const noexcept { return config_; }
  std::uint64_t counter(emulator_counter c) const noexcept {
    return counters_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  // GET /stats: counters, faults injected, peak in-flight devices per gateway.
  std::string stats_json() const;
  std::uint64_t peak_in_flight_per_gateway() const;
  // Connections open now, and the most open at once (a client's pool).
  void connection_opened() noexcept;
  void connection_closed() noexcept;
  std::uint64_t open_connections() const noexcept { return open_.load(); }
  std::uint64_t peak_open_connections() const noexcept { return peak_open_.load(); }

  // For sessions (emulator_session).
  void count(emulator_counter c, std::uint64_t n = 1) noexcept {
    counters_[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t next_request_id() noexcept { return request_ids_.fetch_add(1) + 1; }
  std::uint64_t next_ticket() noexcept { return tickets_.fetch_add(1); }
  // Takes one token of the request-rate bucket; false (and the seconds to
  // wait) when the rate is exceeded.
  bool take_rate_token(std::uint64_t now_ms, std::uint32_t& retry_after_s);
  enum class token_verdict { accepted, refused, expired };
  token_verdict check_token(std::string_view token, std::uint64_t now_ms = 0);
  // PUT refreshToken: a new access and refresh token for an unused refresh
  // token (false: refused); lifetimes from token_lifetime_s.
  struct issued_tokens {
    std::string access, refresh;
  };
  bool refresh(std::string_view refresh_token, std::uint64_t now_ms, issued_tokens& out);
  void gateway_enter(std::string_view gateway, std::uint64_t devices);
  void gateway_leave(std::string_view gateway, std::uint64_t devices);
  emulator_record_sink* record() const noexcept { return record_; }
  void set_ack_sink(emulator_ack_sink* acks) noexcept { acks_ = acks; }
  emulator_ack_sink* acks() const noexcept { return acks_; }
  bool product_permitted(std::string_view product_key) const;

 private:
  emulator_config config_;
  emulator_record_sink* record_;
  emulator_ack_sink* acks_ = nullptr;
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(emulator_counter::count_)>
      counters_{};
  std::atomic<std::uint64_t> request_ids_{0};
  std::atomic<std::uint64_t> tickets_{1'700'000'000'000'000'000ULL};

  std::mutex rate_mutex_;
  double rate_tokens_ = 0;
  std::uint64_t rate_last_ms_ = 0;
  bool rate_started_ = false;

  std::mutex token_mutex_;
  std::unordered_map<std::string, std::uint64_t> token_uses_;
  std::unordered_map<std::string, std::uint64_t> token_expiry_ms_;  // token_lifetime_s
  std::unordered_map<std::string, bool> refresh_used_;
  std::uint64_t issued_ = 0;

  mutable std::mutex gateway_mutex_;
  std::unordered_map<std::string, std::uint64_t> in_flight_;
  std::uint64_t peak_in_flight_ = 0;
  std::atomic<std::uint64_t> open_{0}, peak_open_{0};
  std::string peak_gateway_;
};

}  // namespace fleetcast
