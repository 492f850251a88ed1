// When to renew a token, and what a failed renewal means (see
// token_renewal.hpp).
#include "core/auth/token_renewal.hpp"

#include "core/protocol/token_refresh.hpp"

#include <algorithm>

namespace fleetcast {

void token_renewal::obtained(std::int64_t now_s, std::int64_t expires_s,
                             std::optional<std::int64_t> server_now_s) {
  if (server_now_s) skew_s_ = *server_now_s - now_s;
  under_way_ = false;
  if (!requested_) tries_ = 0;  // a refused token's count goes on until one works a while
  requested_ = false;
  obtained_s_ = now_s;
  if (expires_s <= 0) {
    expires_local_s_ = 0;
    next_s_ = 0;  // renewed when refused
    return;
  }
  expires_local_s_ = expires_s - skew_s_;
  next_s_ = refresh_due_s(now_s, expires_local_s_);
  if (started_once_) next_s_ = std::max(next_s_, last_start_s_ + config_.min_interval_s);
}

token_renewal::verdict token_renewal::refused(std::int64_t now_s) {
  if (!requested_) {
    requested_ = true;
    // A token that worked a while gets a fresh count; one refused at once
    // after its renewal counts on (the endpoint gives unusable tokens).
    if (now_s - obtained_s_ >= config_.min_interval_s) tries_ = 0;
  }
  if (tries_ >= config_.max_tries) {
    next_s_ = 0;
    return verdict::give_up;
  }
  if (!under_way_) next_s_ = now_s;
  return verdict::retry_later;
}

bool token_renewal::due(std::int64_t now_s) const noexcept {
  return !under_way_ && next_s_ != 0 && now_s >= next_s_;
}

void token_renewal::started(std::int64_t now_s) {
  under_way_ = true;
  started_once_ = true;
  last_start_s_ = now_s;
  ++tries_;
}

token_renewal::verdict token_renewal::failed(std::int64_t now_s) {
  under_way_ = false;
  if (requested_ && tries_ >= config_.max_tries) {
    next_s_ = 0;
    return verdict::give_up;
  }
  const unsigned shift = std::min(tries_ > 0 ? tries_ - 1 : 0u, 20u);
  const std::int64_t backoff =
      std::min(config_.max_backoff_s, config_.first_backoff_s << shift);
  next_s_ = now_s + backoff;
  // Before expiry: no later than the token's end (then it is refused, and
  // the renewal is asked for).
  if (!requested_ && expires_local_s_ > now_s) next_s_ = std::min(next_s_, expires_local_s_);
  return verdict::retry_later;
}

}  // namespace fleetcast
