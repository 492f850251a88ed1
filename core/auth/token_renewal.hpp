// token_renewal: when to renew an access token at the refresh endpoint,
// and what a failed renewal means. Sans-io: the times come in (seconds on
// the local wall clock), the decisions go out.
//
// - A token valid until `expires` on the server's clock is renewed a
//   quarter of its life before that, at most 5 minutes before. The
//   server's clock is measured (its answer's Date header, or the token's
//   own iat when there is no Date), so a local clock hours ahead or behind
//   renews neither at every tick nor too late.
// - Renewals that nobody asked for (before expiry) are at least
//   min_interval_s apart, whatever the token says (an expiry in the past
//   must not renew every 250 ms).
// - A renewal that fails is tried again with backoff: one asked for by a
//   refused token (5032) at most max_tries times in all, then the job
//   fails; one before expiry until the token expires, then as asked for.
#pragma once

#include <cstdint>
#include <optional>

namespace fleetcast {

class token_renewal {
 public:
  struct config {
    std::int64_t min_interval_s = 60;
    unsigned max_tries = 4;            // a renewal a refused token asked for
    std::int64_t first_backoff_s = 1;  // then doubling
    std::int64_t max_backoff_s = 60;
  };
  token_renewal() : token_renewal(config{}) {}
  explicit token_renewal(config c) : config_(c) {}

  // A token is in use from local time now_s. `expires_s`: its end on the
  // server's clock (0: unknown, then it is renewed only when refused).
  // `server_now_s`: the server's clock at now_s, when known (a Date header,
  // a fresh token's iat); the skew it shows is kept for later tokens.
  void obtained(std::int64_t now_s, std::int64_t expires_s,
                std::optional<std::int64_t> server_now_s = std::nullopt);

  enum class verdict { retry_later, give_up };
  // The token was refused (5032): a renewal is wanted now (retry_later),
  // or, when the renewed tokens are refused at once every time, give_up
  // after max_tries (the job fails instead of renewing in a loop).
  verdict refused(std::int64_t now_s);
  // Whether a renewal should start at now_s (none is under way), and
  // whether it is one a refused token asked for.
  bool due(std::int64_t now_s) const noexcept;
  bool requested() const noexcept { return requested_; }
  // A renewal starts (due() said so).
  void started(std::int64_t now_s);

  // The renewal under way failed: try again at next_s(), or give up (a
  // refused token's renewal failed max_tries times: the job fails).
  verdict failed(std::int64_t now_s);
  // When the next renewal is due (0: none planned).
  std::int64_t next_s() const noexcept { return next_s_; }
  bool under_way() const noexcept { return under_way_; }
  // The server's clock minus ours, as last measured (s).
  std::int64_t skew_s() const noexcept { return skew_s_; }
  unsigned tries() const noexcept { return tries_; }

 private:
  config config_;
  std::int64_t next_s_ = 0;
  std::int64_t expires_local_s_ = 0;  // the token's end on our clock (0: unknown)
  std::int64_t last_start_s_ = 0;
  std::int64_t obtained_s_ = 0;
  std::int64_t skew_s_ = 0;
  bool requested_ = false, under_way_ = false, started_once_ = false;
  unsigned tries_ = 0;
};

}  // namespace fleetcast
