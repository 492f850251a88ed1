// fair_rate_gate: one request-rate limit shared by several members (the jobs
// a daemon runs against one account), fair among those that want more than
// their share and wasting nothing the others leave unused.
//
// Time is cut into slots of 1/rate seconds; a request takes the first free
// slot. A member that takes slot k may next take slot k + n, where n counts
// the members waiting for a slot right now (itself included): alone it gets
// the whole rate; with n backlogged members each gets rate/n whatever its
// connection count; a member that asks for less leaves its slots to others.
// Up to `burst` slots in the past that nobody took are free (a token bucket's
// burst). Pure arithmetic over times the caller passes in (microseconds on
// one steady clock shared by all members); not thread-safe by itself.
#pragma once

#include <cstdint>
#include <set>
#include <unordered_map>

namespace fleetcast {

class fair_rate_gate {
 public:
  // rate: requests per second (0 = unlimited); burst >= 1.
  fair_rate_gate(double rate, double burst);

  std::uint32_t join();
  void leave(std::uint32_t member);

  // Reserves one request for `member` at `now_us`; returns when it may go
  // (>= now_us).
  std::int64_t reserve(std::uint32_t member, std::int64_t now_us);

  // A new rate and burst from now on (reservations handed out stand).
  void set_rate(double rate, double burst);
  double rate() const noexcept { return rate_; }
  std::size_t members() const noexcept { return members_.size(); }

 private:
  struct member_state {
    std::int64_t next_slot = 0;  // the first slot it may take
    std::int64_t last_slot = -1;
  };
  std::int64_t slot_at(std::int64_t us) const noexcept;
  std::int64_t backlogged(std::int64_t now_slot) const noexcept;

  double rate_;
  double burst_;
  double period_us_ = 0;
  std::set<std::int64_t> taken_;  // reserved slots not yet behind the burst window
  std::unordered_map<std::uint32_t, member_state> members_;
  std::uint32_t next_id_ = 1;
};

}  // namespace fleetcast
