// One subscription shared by the daemon's jobs (see subscription_hub.hpp).
#include "net/session/subscription_hub.hpp"

#include <boost/asio/post.hpp>

#include <chrono>
#include <utility>

namespace fleetcast::net {

namespace asio = boost::asio;

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

subscription_hub::subscription_hub(asio::any_io_executor ex, net::amqp_receiver_config config,
                                   std::string label)
    : ex_(ex), config_(std::move(config)), label_(std::move(label)), ticker_(ex) {}

subscription_hub::~subscription_hub() {
  receiver_.reset();
}

void subscription_hub::join(member& m, std::function<void(const std::string&)> ready) {
  const auto id = ++next_id_;
  members_.emplace(id, &m);
  // A resumed run has tickets already: what is held for them is its.
  router_.join(id, m);
  run_actions();
  if (!receiver_) {
    receiver_.emplace(ex_, config_, nullptr);
    receiver_->hold_messages(
        [this](std::string_view body, std::uint64_t tag) { on_message(body, tag); });
    receiver_->on_sync([this] { return sync_members(); });
    receiver_->on_state(
        [this](const std::string& error, bool refused) { on_state(error, refused); });
    receiver_->start();
    tick();
  }
  if (receiver_->attached()) {
    asio::post(ex_, [ready = std::move(ready)] { ready({}); });
    return;
  }
  pending_[id] = std::move(ready);  // the member keeps its own 15 s deadline
}

void subscription_hub::leave(member& m) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->second != &m) continue;
    pending_.erase(it->first);
    router_.leave(it->first);
    members_.erase(it);
    break;
  }
  if (!members_.empty() || !receiver_) return;
  // Nobody left: what is held goes back to the server with the connection.
  connections_earlier_ += receiver_->connections();
  receiver_.reset();
  ticker_.cancel();
  router_.on_disconnect();
  run_actions();
}

void subscription_hub::expected(member& m, const std::string& ticket) {
  if (router_.held() == 0) return;  // the usual case: nothing to look up
  for (const auto& [id, who] : members_) {
    if (who != &m) continue;
    router_.on_ticket(id, ticket);
    run_actions();
    return;
  }
}

void subscription_hub::on_message(std::string_view body, std::uint64_t tag) {
  router_.on_message(read_subscription_message(body), tag, steady_ms());
  run_actions();
}

void subscription_hub::run_actions() {
  for (auto& a : std::exchange(router_.actions(), {})) {
    if (a.what != ack_router::action::kind::deliver) {
      if (receiver_) receiver_->accept(a.tag);  // nobody's: nothing to record
      continue;
    }
    auto it = members_.find(a.member);
    if (it == members_.end()) continue;  // not acknowledged: delivered again later
    it->second->take(a.message, a.early);
    if (receiver_) receiver_->accept_after_sync(a.tag);  // once recorded and on disk
  }
}

std::string subscription_hub::sync_members() {
  std::string problem;
  for (const auto& [id, who] : members_)
    if (auto p = who->sync(); !p.empty() && problem.empty()) problem = p;
  return problem;
}

void subscription_hub::on_state(const std::string& error, bool refused) {
  if (error.empty()) {  // attached: every job waiting for it may send
    // Told after this returns: a job's answer may stop the subscription.
    for (auto& [id, f] : std::exchange(pending_, {}))
      asio::post(ex_, [f = std::move(f)] { f({}); });
    return;
  }
  router_.on_disconnect();
  run_actions();
  if (!refused) return;  // it reconnects with backoff
  for (auto& [id, f] : std::exchange(pending_, {}))
    asio::post(ex_, [f = std::move(f), error] { f(error); });
}

void subscription_hub::tick() {
  ticker_.expires_after(std::chrono::seconds(1));
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (ec || !receiver_) return;
    router_.advance(steady_ms());
    run_actions();
    tick();
  });
}

bool subscription_hub::attached() const noexcept {
  return receiver_ && receiver_->attached();
}

const std::string& subscription_hub::last_error() const noexcept {
  static const std::string none;
  return receiver_ ? receiver_->last_error() : none;
}

std::uint64_t subscription_hub::connections() const noexcept {
  return connections_earlier_ + (receiver_ ? receiver_->connections() : 0);
}

}  // namespace fleetcast::net
