// Where a run's tokens come from (see token_supply.hpp).
#include "core/auth/token_supply.hpp"

#include <fmt/format.h>

namespace fleetcast {

using start = token_supply::step::start;

start token_supply::first() const noexcept {
  switch (from_) {
    case source::provider:
    case source::command:
      return start::nothing;
    case source::memory:
      return start::use_memory;
    case source::refresh:
    case source::read:
      return start::read_now;
  }
  return start::nothing;
}

void token_supply::began(std::int64_t now_s, std::int64_t expires_s) {
  // A JWT says when it ends; the server's clock is not known yet.
  if (from_ == source::refresh) renewal_.obtained(now_s, expires_s);
}

token_supply::step token_supply::start_refresh(std::int64_t now_s) {
  step s;
  if (!renewal_.due(now_s)) return s;  // under way, or later (a backoff)
  renewal_.started(now_s);
  s.what = start::refresh;
  return s;
}

token_supply::step token_supply::requested(std::int64_t now_s) {
  step s;
  switch (from_) {
    case source::provider:
      provider_asked_ = true;
      ++generation_;
      s.what = start::ask_provider;
      return s;
    case source::memory:
      s.what = start::use_memory;
      return s;
    case source::command:
      s.what = start::run_command;
      return s;
    case source::refresh:
      // Refused: renewed at the refresh endpoint, unless the tokens it
      // hands out are refused at once every time.
      if (renewal_.refused(now_s) == token_renewal::verdict::give_up) {
        s.fail = failure{
            "the token was refused (5032) right after each of its last renewals: the refresh "
            "endpoint hands out tokens the API does not take",
            false};
        return s;
      }
      return start_refresh(now_s);
    case source::read:
      s.what = start::read_now;
      return s;
  }
  return s;
}

token_supply::step token_supply::stopped(bool kill_token, bool cut) {
  step s;
  if (kill_token) {
    s.kill_command = from_ == source::command;
    if (provider_asked_) {  // its reply, if it ever comes, is of no use now
      provider_asked_ = false;
      ++generation_;
      s.fail = failure{"stopped while waiting for the token provider", true};
    }
  }
  if (kill_token || cut) {  // a renewal's wait must not hold a stop
    s.cut_refresh = from_ == source::refresh;
    if (from_ == source::refresh && renewal_.requested() && !renewal_.under_way())
      s.fail = failure{"stopped while waiting to renew the token", true};
  }
  return s;
}

token_supply::step token_supply::tick(std::int64_t now_s) {
  if (from_ == source::refresh) return start_refresh(now_s);  // before expiry, or again
  step s;
  s.reread_if_changed = from_ == source::read;  // rotated outside: used from now on
  return s;
}

token_supply::reply_verdict token_supply::provider_replied(std::uint64_t generation,
                                                           const std::string& why_not) {
  reply_verdict v;
  if (!provider_asked_ || generation != generation_) return v;  // stopped meanwhile, or twice
  provider_asked_ = false;
  if (why_not.empty())
    v.accepted = true;
  else
    v.fail = failure{"the token provider: " + why_not, false};
  return v;
}

token_supply::failure token_supply::provider_threw(const std::string& what) {
  provider_asked_ = false;
  return failure{"the token provider threw: " + what, false};
}

std::optional<token_supply::failure> token_supply::command_ended(const std::string& error,
                                                                 bool killed) {
  if (error.empty()) return std::nullopt;
  return failure{error, killed};
}

token_supply::refresh_verdict token_supply::refresh_ended(
    std::int64_t now_s, const std::string& error, bool cut, std::int64_t expires_s,
    std::optional<std::int64_t> server_now_s) {
  refresh_verdict v;
  const bool asked = renewal_.requested();
  if (error.empty()) {
    renewal_.obtained(now_s, expires_s, server_now_s);
    v.token = asked ? refresh_verdict::give::fresh : refresh_verdict::give::rotated;
  } else if (cut) {
    renewal_.failed(now_s);
    if (asked) v.fail = failure{"stopped while renewing the token", true};
  } else if (renewal_.failed(now_s) == token_renewal::verdict::give_up) {
    v.fail = failure{fmt::format("renewing it at the refresh endpoint failed {} times: {}",
                                 renewal_.tries(), error),
                     false};
  }  // else tried again when due (the tick looks)
  return v;
}

}  // namespace fleetcast
