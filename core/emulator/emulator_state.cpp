// Shared emulator state (see emulator_state.hpp).
#include <fleetcast/core/emulator/emulator_state.hpp>

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fleetcast {

emulator_state::emulator_state(emulator_config config, emulator_record_sink* record)
    : config_(std::move(config)), record_(record) {
  std::sort(config_.products.begin(), config_.products.end());
}

bool emulator_state::product_permitted(std::string_view product_key) const {
  if (config_.products.empty()) return true;
  return std::binary_search(config_.products.begin(), config_.products.end(), product_key,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

bool emulator_state::take_rate_token(std::uint64_t now_ms, std::uint32_t& retry_after_s) {
  const double rps = config_.rate_limit_rps;
  if (rps <= 0) return true;
  const double capacity = std::max(1.0, rps);  // one second's worth
  std::lock_guard lock(rate_mutex_);
  if (!rate_started_) {
    rate_started_ = true;
    rate_tokens_ = capacity;
    rate_last_ms_ = now_ms;
  }
  if (now_ms > rate_last_ms_) {
    rate_tokens_ = std::min(
        capacity, rate_tokens_ + static_cast<double>(now_ms - rate_last_ms_) * rps / 1000.0);
    rate_last_ms_ = now_ms;
  }
  if (rate_tokens_ >= 1.0) {
    rate_tokens_ -= 1.0;
    return true;
  }
  retry_after_s = static_cast<std::uint32_t>(std::max(1.0, std::ceil((1.0 - rate_tokens_) / rps)));
  return false;
}

emulator_state::token_verdict emulator_state::check_token(std::string_view token,
                                                          std::uint64_t now_ms) {
  if (config_.token_lifetime_s) {
    const std::uint64_t life = std::uint64_t{config_.token_lifetime_s} * 1000;
    std::lock_guard lock(token_mutex_);
    auto it = token_expiry_ms_.find(std::string(token));
    if (it == token_expiry_ms_.end()) {  // a token not issued here: its life starts now
      if (!config_.tokens.empty() &&
          std::find(config_.tokens.begin(), config_.tokens.end(), token) == config_.tokens.end())
        return token_verdict::refused;
      it = token_expiry_ms_.emplace(std::string(token), now_ms + life).first;
    }
    if (now_ms >= it->second) return token_verdict::expired;
  } else if (!config_.tokens.empty() && std::find(config_.tokens.begin(), config_.tokens.end(),
                                                  token) == config_.tokens.end()) {
    return token_verdict::refused;
  }
  const auto limit = config_.faults.token_expires_after_requests;
  if (limit == 0) return token_verdict::accepted;
  std::lock_guard lock(token_mutex_);
  auto& uses = token_uses_[std::string(token)];
  if (uses >= limit) return token_verdict::expired;
  ++uses;
  return token_verdict::accepted;
}

bool emulator_state::refresh(std::string_view refresh_token, std::uint64_t now_ms,
                             issued_tokens& out) {
  std::lock_guard lock(token_mutex_);
  if (refresh_token.empty()) return false;
  auto [it, fresh] = refresh_used_.try_emplace(std::string(refresh_token), true);
  if (!fresh) return false;  // each refresh token once
  const std::uint64_t n = ++issued_;
  out.access = "Bearer emulator-access-" + std::to_string(n) + "-" + std::to_string(config_.seed);
  out.refresh = "emulator-refresh-" + std::to_string(n) + "-" + std::to_string(config_.seed);
  const std::uint64_t life =
      std::uint64_t{config_.token_lifetime_s ? config_.token_lifetime_s : 7200} * 1000;
  token_expiry_ms_[out.access] = now_ms + life;
  return true;
}

void emulator_state::gateway_enter(std::string_view gateway, std::uint64_t devices) {
  std::lock_guard lock(gateway_mutex_);
  auto it = in_flight_.find(std::string(gateway));
  if (it == in_flight_.end()) it = in_flight_.emplace(std::string(gateway), 0).first;
  it->second += devices;
  if (it->second > peak_in_flight_) {
    peak_in_flight_ = it->second;
    peak_gateway_ = it->first;
  }
}

void emulator_state::gateway_leave(std::string_view gateway, std::uint64_t devices) {
  std::lock_guard lock(gateway_mutex_);
  auto it = in_flight_.find(std::string(gateway));
  if (it == in_flight_.end()) return;
  it->second -= std::min(it->second, devices);
  if (it->second == 0) in_flight_.erase(it);
}

std::uint64_t emulator_state::peak_in_flight_per_gateway() const {
  std::lock_guard lock(gateway_mutex_);
  return peak_in_flight_;
}

std::string emulator_state::stats_json() const {
  using c = emulator_counter;
  const auto v = [&](c k) { return counter(k); };
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "{{\"requests\":{},\"api_requests\":{},\"devices\":{},\"succeeded\":{},"
                 "\"failed\":{},\"unreported\":{},",
                 v(c::requests), v(c::api_requests), v(c::devices), v(c::succeeded), v(c::failed),
                 v(c::unreported));
  fmt::format_to(it,
                 "\"http\":{{\"400\":{},\"404\":{},\"405\":{},\"413\":{},\"429\":{},\"431\":{},"
                 "\"502\":{},\"503\":{}}},",
                 v(c::http_400), v(c::http_404), v(c::http_405), v(c::http_413), v(c::http_429),
                 v(c::http_431), v(c::http_502), v(c::http_503));
  fmt::format_to(it,
                 "\"codes\":{{\"5106\":{},\"5032\":{},\"5041\":{},\"5311\":{},\"5312\":{},"
                 "\"5340\":{},\"validation\":{}}},",
                 v(c::code_5106), v(c::code_5032), v(c::code_5041), v(c::code_5311),
                 v(c::code_5312), v(c::code_5340), v(c::code_validation));
  fmt::format_to(it,
                 "\"faults\":{{\"reset\":{},\"http_502\":{},\"http_503\":{},\"code_5340\":{},"
                 "\"stall\":{},\"close\":{},\"token_expired\":{},\"unreported\":{},"
                 "\"rate_limited\":{}}},",
                 v(c::resets), v(c::http_502), v(c::http_503), v(c::code_5340), v(c::stalls),
                 v(c::closes), v(c::tokens_expired), v(c::unreported), v(c::http_429));
  std::lock_guard lock(gateway_mutex_);
  std::uint64_t in_flight = 0;
  for (const auto& [gw, n] : in_flight_) in_flight += n;
  fmt::format_to(it, "\"token_refreshes\":{},\"refresh_refused\":{},", v(c::token_refreshes),
                 v(c::refresh_refused));
  fmt::format_to(it,
                 "\"connections\":{},\"tls_handshakes\":{},\"open_connections\":{},"
                 "\"peak_open_connections\":{},\"in_flight_gateway_devices\":{},"
                 "\"peak_in_flight_per_gateway\":{},",
                 v(c::connections), v(c::tls_handshakes), open_.load(), peak_open_.load(),
                 in_flight, peak_in_flight_);
  out += "\"peak_gateway\":";
  append_json_string_or_null(out, peak_gateway_);
  out += "}\n";
  return out;
}

void emulator_state::connection_opened() noexcept {
  const auto now = open_.fetch_add(1) + 1;
  auto peak = peak_open_.load();
  while (now > peak && !peak_open_.compare_exchange_weak(peak, now)) {
  }
}

void emulator_state::connection_closed() noexcept {
  open_.fetch_sub(1);
}

}  // namespace fleetcast
