// subscription_hub: one AMQP subscription connection shared by the daemon's
// jobs that name the same subscription (server, hostname, source address,
// AccessKey and AccessSecret, trust). The first job to join starts it, the
// last to leave stops it. Where each message goes is core's ack_router's
// decision (to the job whose run knows its ticket; held unacknowledged for
// a job that has the device's request on its way; else unmatched at once).
// A message given to a job is acknowledged to the server only after that
// job journalled its outcome and the journal was synced to the disk.
#pragma once

#include <fleetcast/core/acks/ack_router.hpp>
#include <fleetcast/core/acks/delivery_tracker.hpp>
#include "net/acks/amqp_ack_receiver.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcast::net {

// The time the trackers and the router are given: a steady clock's ms.
std::uint64_t steady_ms();

class subscription_hub {
 public:
  // A job's side: its tracker, fed through it (knows and awaits answer
  // the router's questions).
  struct member : ack_router::member_view {
    // A message for one of its tickets (`early`: held until it had it):
    // recorded when this returns.
    virtual void take(const subscription_message& m, bool early) = 0;
    // Makes what take() recorded durable: "" when done, else why not.
    virtual std::string sync() = 0;
  };
  subscription_hub(boost::asio::any_io_executor ex, net::amqp_receiver_config config,
                   std::string label);
  ~subscription_hub();
  subscription_hub(const subscription_hub&) = delete;
  subscription_hub& operator=(const subscription_hub&) = delete;

  // `ready` is called at most once: when a link is attached (""), or with
  // the server's error when it refused the login or the queue (the member
  // gives up on its own after 15 s, and leaves).
  void join(member& m, std::function<void(const std::string& error)> ready);
  void leave(member& m);
  // The member's run was given `ticket` (after its tracker took it).
  void expected(member& m, const std::string& ticket);

  bool empty() const noexcept { return members_.empty(); }
  const std::string& label() const noexcept { return label_; }  // no credential in it
  bool attached() const noexcept;
  const std::string& last_error() const noexcept;
  std::uint64_t connections() const noexcept;  // made since the daemon started
  std::size_t held() const noexcept { return router_.held(); }
  // Every message since the daemon started, by what came of it.
  const ack_router::counts& totals() const noexcept { return router_.totals(); }

 private:
  void on_message(std::string_view body, std::uint64_t tag);
  void run_actions();
  std::string sync_members();
  void on_state(const std::string& error, bool refused);
  void tick();

  boost::asio::any_io_executor ex_;
  net::amqp_receiver_config config_;
  std::optional<net::amqp_ack_receiver> receiver_;  // while a member is joined
  std::string label_;
  ack_router router_;
  std::map<ack_router::member_id, member*> members_;
  ack_router::member_id next_id_ = 0;
  // Members waiting for the link: told "" when it is attached, or the
  // server's error when it refused the login or the queue.
  std::map<ack_router::member_id, std::function<void(const std::string&)>> pending_;
  boost::asio::steady_timer ticker_;
  std::uint64_t connections_earlier_ =
      0;  // made by the receivers before this one  // the router's counts the hook has been told
};

}  // namespace fleetcast::net
