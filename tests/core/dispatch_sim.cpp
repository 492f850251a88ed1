// dispatch_sim (see dispatch_sim.hpp): a discrete-event simulation of the
// net driver around the dispatcher.
#include "dispatch_sim.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <stdexcept>

namespace fleetcast::testing {

std::string sim_devices(std::size_t n, std::string_view product) {
  std::string csv = "productKey,deviceKey\n";
  for (std::size_t i = 0; i < n; ++i) csv += fmt::format("{},d{}\n", product, i);
  return csv;
}

job sim_job(std::string_view extra) {
  std::string text = R"({"endpoint": "http://127.0.0.1:9", "auth": {"token_file": "token"},
    "command": {"type": 2, "data": "[{\"switch\":true}]"}, "devices": {"file": "d.csv"})";
  if (!extra.empty())
    text = fmt::format("{}, {}}}", text, extra);
  else
    text += "}";
  auto parsed = parse_job(text, "/tmp/sim.json");
  if (!parsed.job) {
    std::string why;
    for (const auto& e : parsed.errors) why += e.message + "; ";
    throw std::runtime_error("sim_job: " + why);
  }
  return *parsed.job;
}

std::string sim_success_body(const sim_request& r) {
  std::string b = R"({"code":200,"msg":"ok","data":{"successList":[)";
  for (std::size_t i = 0; i < r.device_keys.size(); ++i) {
    b += fmt::format(R"({}{{"data":{{"productKey":"p1","deviceKey":"{}"}},"ticket":"{}{:03}"}})",
                     i ? "," : "", r.device_keys[i], r.nth, i);
  }
  return b + R"(],"failureList":[]}})";
}

std::string sim_code_body(std::int64_t code, std::string_view msg) {
  return fmt::format(R"({{"code":{},"msg":"{}"}})", code, msg);
}

struct dispatch_sim::sink_impl final : result_sink {
  dispatch_sim& sim;
  explicit sink_impl(dispatch_sim& s) : sim(s) {}
  void on_result(const device_result& r) override {
    sim_result x;
    x.index = r.index;
    x.device_key = std::string(r.device.device_key);
    x.reason = r.reason;
    x.code = r.code;
    x.msg = std::string(r.msg);
    x.ticket = std::string(r.ticket);
    x.attempts = r.attempts;
    x.uncertain = r.uncertain;
    sim.results_.push_back(std::move(x));
  }
};

// A connection as the simulated network has it.
struct dispatch_sim::lane {
  enum class state { ready, sleeping, busy, done };
  state st = state::ready;
  std::int64_t at = 0;  // sleeping: wake then; busy: the action completes then
  bool wake_early = false;
  dispatch_action::kind doing = dispatch_action::kind::done;
  bool connect_result = false;
  struct queued {
    std::int64_t at;
    sim_answer answer;
  };
  std::deque<queued> answers;  // to requests written, in order
  std::optional<queued> reading;
  std::unique_ptr<emulator_session> session;
  std::uint64_t nth = 0;  // requests on this connection
  bool cut = false;
};

dispatch_sim::dispatch_sim(job j, std::string devices_csv, emulator_config server)
    : job_(std::move(j)),
      csv_(std::move(devices_csv)),
      in_(csv_),
      stream_(make_device_reader(device_format::csv, in_)),
      server_(std::move(server)),
      sink_(std::make_unique<sink_impl>(*this)) {}

dispatch_sim::~dispatch_sim() = default;

void dispatch_sim::apply_effects() {
  for (;;) {
    const auto e = d_->take_effects();
    const auto request = d_->take_token_request();
    if (!e.wake && !e.cut && !e.kill_token && !request) return;
    if (e.kill_token && token_at_) {
      token_at_.reset();
      token_outcomes.emplace_back(now_, false);
      d_->on_token_failed("killed", true, now_);
    }
    if (e.cut) {
      for (auto& l : lanes_) {
        l->answers.clear();
        l->cut = true;
        if (l->st == lane::state::busy && l->doing == dispatch_action::kind::read) l->at = now_;
      }
    }
    if (e.wake) {
      for (auto& l : lanes_)
        if (l->st == lane::state::sleeping && l->wake_early) l->st = lane::state::ready;
    }
    if (request) {
      ++token_fetches;
      token_at_ = now_ + token_fetch_us;
    }
  }
}

void dispatch_sim::act(unsigned i) {
  auto& l = *lanes_[i];
  dispatch_action a;
  try {
    a = d_->next(i, now_);
  } catch (const std::exception& e) {
    d_->on_lane_failed(i, e.what(), now_);
    l.st = lane::state::done;
    apply_effects();
    return;
  }
  apply_effects();
  using kind = dispatch_action::kind;
  l.doing = a.what;
  switch (a.what) {
    case kind::connect:
      ++connects;
      l.connect_result = !connect_ok || connect_ok(i, ++connect_attempts_);
      l.st = lane::state::busy;
      l.at = now_ + connect_us;
      break;
    case kind::write: {
      REQUIRE_MESSAGE(l.session, "a write on a connection that is not open");
      sim_request r;
      r.at_us = now_;
      r.lane = i;
      r.nth = requests_.size() + 1;
      r.body = std::string(a.body);
      const auto auth = a.head.find("Authorization: ");
      REQUIRE(auth != std::string_view::npos);
      r.token = std::string(a.head.substr(auth + 15, a.head.find("\r\n", auth) - auth - 15));
      simdjson::dom::parser parser;
      auto doc = parser.parse(r.body);
      for (auto d : doc["deviceList"].get_array())
        r.device_keys.emplace_back(std::string_view(d["deviceKey"].get_string()));
      std::optional<sim_answer> scripted;
      if (script) scripted = script(r);
      sim_answer ans;
      if (scripted) {
        ans = *scripted;
      } else {
        emulator_request er;
        er.method = "POST";
        er.target = batch_control_path;
        er.authorization = std::string_view(r.token);
        er.body = r.body;
        er.connection_request = ++l.nth;
        const auto& reply = l.session->handle(er, static_cast<std::uint64_t>(now_ / 1000));
        ans.reset = reply.what == emulator_reply::kind::reset;
        ans.status = reply.status;
        ans.close = reply.close;
        if (reply.retry_after_s) ans.retry_after = std::to_string(reply.retry_after_s);
        ans.body = std::string(l.session->body());
        ans.delay_us = answer_us + static_cast<std::int64_t>(reply.delay_ms) * 1000;
      }
      requests_.push_back(std::move(r));
      l.answers.push_back({now_ + ans.delay_us, std::move(ans)});
      peak_window = std::max(peak_window, l.answers.size());
      d_->on_written(i, {}, now_);
      apply_effects();
      l.st = lane::state::ready;
      break;
    }
    case kind::read:
      REQUIRE_MESSAGE((!l.answers.empty() || l.cut), "a read with nothing written");
      l.st = lane::state::busy;
      if (l.answers.empty()) {
        l.at = now_;
        l.reading.reset();
      } else {
        l.reading = std::move(l.answers.front());
        l.answers.pop_front();
        l.at = std::max(now_, l.reading->at);
      }
      break;
    case kind::wait:
      REQUIRE(a.until_us >= now_);
      l.st = lane::state::sleeping;
      l.at = a.until_us;
      l.wake_early = a.wake_early;
      break;
    case kind::close:
      l.answers.clear();
      l.session.reset();
      l.st = lane::state::ready;
      break;
    case kind::done:
      l.st = lane::state::done;
      break;
  }
}

void dispatch_sim::complete(unsigned i) {
  auto& l = *lanes_[i];
  l.st = lane::state::ready;
  if (l.doing == dispatch_action::kind::connect) {
    if (l.connect_result) {
      l.session = std::make_unique<emulator_session>(server_);
      l.nth = 0;
      l.cut = false;
    }
    if (l.connect_result)
      d_->on_connected(i, {}, now_);
    else
      d_->on_connected(i,
                       {fleetcast::connect_result::kind::failed,
                        make_error_code(boost::system::errc::connection_refused),
                        "cannot connect to the sim: refused"},
                       now_);
  } else if (l.doing == dispatch_action::kind::read) {
    read_result r;
    if (l.reading && !l.reading->answer.reset && !l.cut) {
      const auto& a = l.reading->answer;
      r.answered = true;
      r.http_status = a.status;
      r.keep_alive = !a.close;
      r.retry_after = a.retry_after;
      r.body = a.body;
      r.readable = a.body.size();
    }
    if (l.session) l.session->answered();
    d_->on_read(i, r, now_);
    l.reading.reset();
  }
  apply_effects();
}

run_summary dispatch_sim::run(std::int64_t limit_us) {
  if (!hooks.on_attempt) {
    hooks.on_attempt = [this](attempt_outcome o, std::size_t n) {
      events.push_back(fmt::format("attempt {} {}", to_string(o), n));
    };
  }
  const unsigned n = std::max<std::uint32_t>(1, job_.connections);
  if (!job_.rollout.steps().empty()) {  // as the session does: a census, and a way to read again
    plan_ = std::make_unique<phase_plan>(job_.rollout);
    device_stream census(make_text_device_reader(device_format::csv, csv_));
    std::string error;
    if (!take_census(*plan_, census, error)) throw std::runtime_error(error);
    if (!hooks.reopen_input)
      hooks.reopen_input = [this](std::string&) {
        return make_text_device_reader(device_format::csv, csv_);
      };
  }
  d_ = std::make_unique<dispatcher>(job_, stream_, *sink_, hooks, n, 42, plan_.get());
  for (unsigned i = 0; i < n; ++i) lanes_.push_back(std::make_unique<lane>());
  d_->start(0, wall_start_us, first_token, "127.0.0.1:9");
  apply_effects();
  std::int64_t next_tick = 250'000;
  std::uint64_t steps_at_now = 0;
  std::int64_t last_now = -1;
  for (;;) {
    REQUIRE_MESSAGE(now_ <= limit_us, "the simulated run did not end within its limit");
    if (now_ == last_now) {
      REQUIRE_MESSAGE(++steps_at_now < 200'000, "the machine spins without time passing");
    } else {
      steps_at_now = 0;
      last_now = now_;
    }
    bool acted = false;
    for (unsigned i = 0; i < n; ++i) {
      if (lanes_[i]->st == lane::state::ready) {
        act(i);
        acted = true;
      }
    }
    if (acted) continue;
    if (std::all_of(lanes_.begin(), lanes_.end(),
                    [](const auto& l) { return l->st == lane::state::done; }))
      break;
    // The next event.
    std::int64_t t = next_tick;
    for (const auto& l : lanes_)
      if (l->st == lane::state::busy || l->st == lane::state::sleeping) t = std::min(t, l->at);
    if (token_at_) t = std::min(t, *token_at_);
    if (!at.empty()) t = std::min(t, at.begin()->first);
    now_ = std::max(now_, t);
    for (unsigned i = 0; i < n; ++i) {
      auto& l = *lanes_[i];
      if (l.st == lane::state::busy && l.at <= now_)
        complete(i);
      else if (l.st == lane::state::sleeping && l.at <= now_)
        l.st = lane::state::ready;
    }
    if (token_at_ && *token_at_ <= now_) {
      token_at_.reset();
      auto fresh = fetch_token ? fetch_token(token_fetches) : std::optional<std::string>("t1");
      token_outcomes.emplace_back(now_, fresh.has_value());
      if (fresh)
        d_->on_token(*fresh, now_);
      else
        d_->on_token_failed("the token command exited with status 1", false, now_);
      apply_effects();
    }
    while (!at.empty() && at.begin()->first <= now_) {
      auto f = std::move(at.begin()->second);
      at.erase(at.begin());
      f(*d_);
      apply_effects();
    }
    if (now_ >= next_tick) {
      d_->tick(now_);
      apply_effects();
      progress.push_back(d_->progress(now_));
      next_tick += 250'000;
    }
  }
  auto summary = d_->finish(now_);
  progress.push_back(d_->progress(now_));
  return summary;
}

void dispatch_sim::check_exactly_once(std::size_t n) const {
  std::vector<int> seen(n);
  for (const auto& r : results_) {
    REQUIRE(r.index < n);
    ++seen[r.index];
  }
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (seen[i] != 1) ++wrong;
  CHECK_MESSAGE(wrong == 0, wrong << " of " << n << " devices without exactly one result");
  CHECK(results_.size() == n);
}

std::map<std::string, int> dispatch_sim::sends() const {
  std::map<std::string, int> m;
  for (const auto& r : requests_)
    for (const auto& k : r.device_keys) ++m[k];
  return m;
}

const sim_result* dispatch_sim::result_of(std::string_view device_key) const {
  for (const auto& r : results_)
    if (r.device_key == device_key) return &r;
  return nullptr;
}

}  // namespace fleetcast::testing
