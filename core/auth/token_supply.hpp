// token_supply: where a run's access tokens come from, and what a request,
// a stop, a tick or a finished fetch mean for them. Sans-io: the driver
// tells it what happened (times in seconds on the local wall clock) and
// carries out the step it gets back (ask the embedder's provider, run the
// token command, renew at the refresh endpoint, read the file); the
// dispatcher gets the tokens and the failures the steps name.
//
// - The source is chosen once: the embedder's provider, else a token in
//   memory, else the token command, else a refresh endpoint, else a file or
//   the environment, read when asked (a file is also watched: a token
//   rotated outside is used from the next tick on).
// - With a refresh endpoint, token_renewal decides when: before expiry on
//   the tick, at once for a refused token, never in a loop of tokens the API
//   refuses (the job fails, saying why).
// - A stop (the dispatcher's kill_token or cut) ends what is under way: the
//   command is killed, the renewal's connection cut, and a request that
//   waits for a provider's reply or for a renewal not yet due fails as
//   cancelled, so nothing holds the stop. A provider's reply that comes
//   after that, or a second reply, is dropped.
#pragma once

#include "core/auth/token_renewal.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace fleetcast {

class token_supply {
 public:
  enum class source { provider, memory, command, refresh, read };

  // A request failed: what the dispatcher is told (on_token_failed).
  struct failure {
    std::string text;
    bool cancelled = false;  // by a stop, not by the source
  };

  // What the driver does now.
  struct step {
    enum class start {
      nothing,
      ask_provider,  // call the provider with generation(); its reply: provider_replied
      use_memory,    // give the token in memory to the dispatcher (on_token)
      run_command,   // run the token command; its end: command_ended
      refresh,       // renew at the refresh endpoint; its end: refresh_ended
      read_now,      // read the file or the variable, give it (on_token) or its error
    };
    start what = start::nothing;
    bool kill_command = false;  // kill the token command's process group
    bool cut_refresh = false;   // cut the renewal's connection
    bool reread_if_changed = false;  // the file changed: read it, on_token_rotated
    std::optional<failure> fail;     // tell the dispatcher (on_token_failed)
  };

  explicit token_supply(source from, token_renewal::config renewal = {})
      : from_(from), renewal_(renewal) {}

  source from() const noexcept { return from_; }
  // How the run's first token is had before the dispatcher starts: read now
  // (a file or the environment; a refresh endpoint's current access token),
  // taken from memory, or nothing (the dispatcher's first action asks:
  // a provider, a command).
  step::start first() const noexcept;
  // The first token is in use from now_s; `expires_s` its JWT expiry (0:
  // none). A refresh endpoint plans the renewal from it.
  void began(std::int64_t now_s, std::int64_t expires_s);

  // The dispatcher asks for a token (take_token_request).
  step requested(std::int64_t now_s);
  // The dispatcher's effects: kill_token (a fetch is of no use any more)
  // and cut (the run stops now).
  step stopped(bool kill_token, bool cut);
  // The run's clock ticks: a renewal before expiry, a rotated file.
  step tick(std::int64_t now_s);

  // The provider was asked (ask_provider): the generation its reply carries.
  std::uint64_t generation() const noexcept { return generation_; }
  // Its reply: `why_not` empty for a token that passed the checks. Nothing
  // (dropped: stale, a second reply, after a stop) or what the dispatcher
  // is told: a failure, else the token is given (accepted()).
  struct reply_verdict {
    bool accepted = false;
    std::optional<failure> fail;
  };
  reply_verdict provider_replied(std::uint64_t generation, const std::string& why_not);
  // The provider threw while being asked.
  failure provider_threw(const std::string& what);

  // The token command ended: a failure, or none (the token is given).
  std::optional<failure> command_ended(const std::string& error, bool killed);

  // A renewal ended. On success (`error` empty) the new token goes to the
  // dispatcher as its answer to a request (fresh: on_token) or as a
  // rotation (on_token_rotated). `cut`: a stop ended it.
  struct refresh_verdict {
    enum class give { nothing, fresh, rotated } token = give::nothing;
    std::optional<failure> fail;
  };
  refresh_verdict refresh_ended(std::int64_t now_s, const std::string& error, bool cut,
                                std::int64_t expires_s, std::optional<std::int64_t> server_now_s);

  const token_renewal& renewal() const noexcept { return renewal_; }
  bool provider_waiting() const noexcept { return provider_asked_; }

 private:
  step start_refresh(std::int64_t now_s);

  source from_;
  token_renewal renewal_;
  bool provider_asked_ = false;
  std::uint64_t generation_ = 0;
};

}  // namespace fleetcast
