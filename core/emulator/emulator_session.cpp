// Emulator request handling (see emulator_session.hpp).
#include "core/emulator/emulator_session.hpp"
#include "core/protocol/token_refresh.hpp"

#include "core/input/device_hash.hpp"
#include "core/protocol/api_errc.hpp"
#include "core/protocol/json_escape.hpp"
#include "core/protocol/request_encoder.hpp"
#include "core/protocol/validation.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace fleetcast {

namespace dom = simdjson::dom;

namespace {

constexpr std::uint64_t splitmix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr double unit(std::uint64_t h) noexcept {
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
}

// Which fault a request-level chance is for: independent streams per fault.
enum fault_stream : std::uint64_t { f502 = 1, f503, f5340, freset, fstall, flatency };

// An integer field of the request as the command model holds it: absent for
// missing or null, a value out of every range for the wrong type.
std::optional<std::int64_t> int_field(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  std::int64_t v;
  if (e.get_int64().get(v) == simdjson::SUCCESS) return v;
  return std::numeric_limits<std::int64_t>::min();
}

bool same_command(const command& a, const command& b) {
  return a.type == b.type && a.data == b.data && a.data_format == b.data_format && a.qos == b.qos &&
         a.is_cache == b.is_cache && a.cache_time == b.cache_time && a.is_cover == b.is_cover;
}

}  // namespace

emulator_ack_plan plan_ack(const emulator_acks& acks, std::uint64_t device_hash,
                           std::uint64_t seed) {
  // Its own stream of draws per device, apart from the device's outcome's.
  std::uint64_t h = splitmix(device_hash ^ splitmix(seed ^ 0x61636b73ULL));  // "acks"
  const auto draw = [&h] {
    h = splitmix(h);
    return unit(h);
  };
  emulator_ack_plan p;
  const double lost = draw(), failed = draw(), dup = draw(), early = draw();
  const double spread = draw(), spread2 = draw();
  p.what = lost < acks.loss_ratio     ? emulator_ack_plan::fate::lost
           : failed < acks.fail_ratio ? emulator_ack_plan::fate::fail
                                      : emulator_ack_plan::fate::succ;
  p.early = early < acks.early_ratio;
  const auto delay = [&](double u) {
    return acks.delay_ms + static_cast<std::uint32_t>(u * (acks.delay_random_ms + 1.0));
  };
  p.delay_ms = p.early ? 0 : delay(spread);
  if (dup < acks.duplicate_ratio) p.second_ms = p.delay_ms + 1 + delay(spread2);
  return p;
}

std::string_view to_string(emulator_ack_plan::fate f) noexcept {
  switch (f) {
    case emulator_ack_plan::fate::succ:
      return "succ";
    case emulator_ack_plan::fate::fail:
      return "fail";
    case emulator_ack_plan::fate::lost:
      return "lost";
  }
  return "lost";
}

std::string_view http_reason(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
  }
  return "Unknown";
}

struct emulator_session::impl {
  dom::parser parser;
  dom::array devices;  // the request's deviceList, valid until the next parse
};

emulator_session::emulator_session(emulator_state& state)
    : impl_(std::make_unique<impl>()), state_(state) {}

emulator_session::~emulator_session() {
  answered();
}

double emulator_session::chance(std::uint64_t request_id, std::uint64_t what) const noexcept {
  return unit(splitmix(state_.config().seed ^ splitmix(request_id * 16 + what)));
}

const emulator_reply& emulator_session::error(int status, std::int64_t code, std::string_view msg) {
  body_.clear();
  auto it = std::back_inserter(body_);
  fmt::format_to(it, "{{\"code\":{},\"msg\":", code);
  append_json_string(body_, msg);
  body_ += ",\"extMsg\":null,\"data\":null}";
  reply_.status = status;
  return reply_;
}

const emulator_reply& emulator_session::refuse(int status) {
  state_.count(emulator_counter::requests);
  state_.count(status == 413 ? emulator_counter::http_413 : emulator_counter::http_431);
  reply_ = {};
  reply_.close = true;
  return error(status, status, http_reason(status));
}

void emulator_session::answered() {
  for (const auto& [gateway, n] : gateways_) state_.gateway_leave(gateway, n);
  gateways_.clear();
}

const emulator_reply& emulator_session::handle(const emulator_request& req, std::uint64_t now_ms) {
  using c = emulator_counter;
  answered();  // a session answers in order: the previous request is done
  reply_ = {};
  state_.count(c::requests);
  const auto& cfg = state_.config();

  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (path == "/stats") {
    if (req.method != "GET") {
      state_.count(c::http_405);
      reply_.allow = "GET";
      return error(405, 405, "use GET for /stats");
    }
    body_ = state_.stats_json();
    reply_.status = 200;
    return reply_;
  }
  if (path == refresh_token_path) return refresh(req, now_ms);
  if (path != batch_control_path) {
    state_.count(c::http_404);
    return error(404, 404, "no such path");
  }
  if (req.method != "POST") {
    state_.count(c::http_405);
    reply_.allow = "POST";
    return error(405, 405, "use POST");
  }
  state_.count(c::api_requests);
  const std::uint64_t id = state_.next_request_id();
  if (cfg.faults.close_after_requests != 0 &&
      req.connection_request >= cfg.faults.close_after_requests) {
    reply_.close = true;  // as nginx's keepalive_requests: the Nth answer closes
    state_.count(c::closes);
  }
  if (cfg.latency_fixed_ms || cfg.latency_random_ms) {
    reply_.delay_ms =
        cfg.latency_fixed_ms +
        static_cast<std::uint32_t>(chance(id, flatency) * (cfg.latency_random_ms + 1));
  }

  // The gateway in front of the API.
  if (!state_.take_rate_token(now_ms, reply_.retry_after_s)) {
    state_.count(c::http_429);
    return error(429, 429, "too many requests");
  }
  if (chance(id, f502) < cfg.faults.http_502_ratio) {
    state_.count(c::http_502);
    reply_.status = 502;
    reply_.content_type = "text/html";
    body_ = "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>";
    return reply_;
  }
  if (chance(id, f503) < cfg.faults.http_503_ratio) {
    state_.count(c::http_503);
    reply_.status = 503;
    reply_.retry_after_s = cfg.faults.retry_after_s;
    reply_.content_type = "text/html";
    body_ = "<html><head><title>503 Service Unavailable</title></head><body>503</body></html>";
    return reply_;
  }

  // The API: token, then the command, then the device list.
  if (!req.authorization || req.authorization->empty()) {
    state_.count(c::code_5106);
    return error(200, 5106, api_code_description(5106));
  }
  switch (state_.check_token(*req.authorization, now_ms)) {
    case emulator_state::token_verdict::accepted:
      break;
    case emulator_state::token_verdict::expired:
      state_.count(c::tokens_expired);
      [[fallthrough]];
    case emulator_state::token_verdict::refused:
      state_.count(c::code_5032);
      return error(200, 5032, api_code_description(5032));
  }

  padded_.assign(req.body);
  const std::size_t size = padded_.size();
  padded_.append(simdjson::SIMDJSON_PADDING, '\0');
  dom::element root;
  dom::object obj;
  if (impl_->parser.parse(padded_.data(), size, false).get(root) != simdjson::SUCCESS ||
      root.get_object().get(obj) != simdjson::SUCCESS) {
    state_.count(c::http_400);
    return error(400, 400, "request body is not a JSON object");
  }
  command cmd;
  cmd.type = int_field(obj, "type");
  cmd.data_format = int_field(obj, "dataFormat");
  cmd.qos = int_field(obj, "qos");
  cmd.is_cache = int_field(obj, "isCache");
  cmd.cache_time = int_field(obj, "cacheTime");
  cmd.is_cover = int_field(obj, "isCover");
  std::string_view data;
  if (obj["data"].get_string().get(data) == simdjson::SUCCESS) cmd.data = std::string(data);
  // A connection sends the same command again and again: validate it once.
  if (!last_command_ || !same_command(*last_command_, cmd)) {
    auto errors = validate_command(cmd);
    last_code_ = 0;
    if (!errors.empty()) {
      const auto& e = errors.front();
      last_code_ = e.code.category() == api_category() ? e.code.value() : 400;
      last_msg_ = e.code.category() == api_category()
                      ? std::string(api_code_description(e.code.value()))
                      : e.message;
    }
    last_command_ = std::move(cmd);
  }
  if (last_code_ != 0) {
    state_.count(c::code_validation);
    return error(last_code_ == 400 ? 400 : 200, last_code_, last_msg_);
  }

  dom::array list;
  if (obj["deviceList"].get_array().get(list) != simdjson::SUCCESS || list.size() == 0) {
    state_.count(c::code_5311);
    return error(200, 5311, api_code_description(5311));
  }
  if (list.size() > cfg.max_devices) {
    state_.count(c::code_5312);
    return error(200, 5312, api_code_description(5312));
  }
  if (!cfg.products.empty()) {
    for (dom::element d : list) {
      std::string_view pk;
      if (d["productKey"].get_string().get(pk) == simdjson::SUCCESS &&
          !state_.product_permitted(pk)) {
        state_.count(c::code_5041);
        return error(200, 5041, api_code_description(5041));
      }
    }
  }
  if (chance(id, f5340) < cfg.faults.code_5340_ratio) {
    state_.count(c::code_5340);
    return error(200, 5340, api_code_description(5340));
  }
  impl_->devices = list;
  echo_ = cfg.faults.echo_token ? *req.authorization : std::string_view();
  return execute(id, now_ms);
}

// PUT refreshToken?refreshToken=R: new tokens for an unused refresh token.
const emulator_reply& emulator_session::refresh(const emulator_request& req, std::uint64_t now_ms) {
  if (req.method != "PUT") {
    state_.count(emulator_counter::http_405);
    reply_.allow = "PUT";
    return error(405, 405, "use PUT");
  }
  std::string token;
  const auto q = req.target.find("?refreshToken=");
  if (q != std::string_view::npos) {
    std::string_view v = req.target.substr(q + 14);
    v = v.substr(0, v.find('&'));
    for (std::size_t i = 0; i < v.size(); ++i) {  // URL-decoded
      const auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
      };
      if (v[i] == '%' && i + 2 < v.size() && hex(v[i + 1]) >= 0 && hex(v[i + 2]) >= 0) {
        token += static_cast<char>(hex(v[i + 1]) * 16 + hex(v[i + 2]));
        i += 2;
      } else {
        token += v[i];
      }
    }
  }
  emulator_state::issued_tokens issued;
  if (!state_.refresh(token, now_ms, issued)) {
    state_.count(emulator_counter::refresh_refused);
    return error(200, 5032, "refresh token expired");
  }
  state_.count(emulator_counter::token_refreshes);
  const auto& cfg = state_.config();
  const std::int64_t now_s = req.wall_ms / 1000;
  const std::int64_t life = cfg.token_lifetime_s ? cfg.token_lifetime_s : 7200;
  body_ = "{\"code\":200,\"msg\":\"success\",\"extMsg\":null,\"data\":{\"accessToken\":{\"token\":";
  append_json_string(body_, issued.access);
  fmt::format_to(std::back_inserter(body_),
                 ",\"expirationTime\":{}}},\"refreshToken\":{{\"token\":", now_s + life);
  append_json_string(body_, issued.refresh);
  fmt::format_to(std::back_inserter(body_), ",\"expirationTime\":{}}}}}}}", now_s + 30 * 86400);
  reply_.status = 200;
  return reply_;
}

namespace {
const emulator_cohort_fault* cohort_fault_of(const emulator_config& cfg, const pkdk_view& d) {
  for (const auto& f : cfg.cohort_faults)
    if (f.matches(d)) return &f;
  return nullptr;
}
}  // namespace

const emulator_reply& emulator_session::execute(std::uint64_t id, std::uint64_t now_ms) {
  using c = emulator_counter;
  const auto& cfg = state_.config();
  emulator_record_sink* record = state_.record();
  body_ = "{\"code\":200,\"msg\":\"success\",\"extMsg\":null,\"data\":{\"successList\":[";
  failures_.clear();
  record_.clear();
  bool first_success = true;
  std::uint64_t executed = 0, succeeded = 0, failed = 0, unreported = 0;
  char ticket[24];

  for (dom::element d : impl_->devices) {
    pkdk_view dev;
    std::string_view* fields[4] = {&dev.product_key, &dev.device_key, &dev.gateway_product_key,
                                   &dev.gateway_device_key};
    static constexpr std::string_view names[4] = {"productKey", "deviceKey", "gatewayProductKey",
                                                  "gatewayDeviceKey"};
    for (int i = 0; i < 4; ++i) {
      if (d[names[i]].get_string().get(*fields[i]) != simdjson::SUCCESS) *fields[i] = {};
    }

    const std::uint64_t h = splitmix(device_hash(dev.product_key, dev.device_key) ^ cfg.seed);
    std::string_view outcome;
    std::string_view msg;
    std::string_view ticket_text;
    if (dev.product_key.empty() || dev.device_key.empty()) {
      msg = "device not found";
      outcome = "failed";
    } else if (const emulator_cohort_fault* fault = cohort_fault_of(cfg, dev);
               unit(h) < (fault ? fault->failure_ratio : cfg.device_failure_ratio)) {
      msg = cfg.failure_messages[(h >> 7) % cfg.failure_messages.size()];
      outcome = "failed";
    } else {
      const auto n = fmt::format_to_n(ticket, sizeof ticket, "{}", state_.next_ticket());
      ticket_text = {ticket, n.size};
      outcome = unit(splitmix(h)) < cfg.faults.missing_device_ratio ? "unreported" : "succeeded";
    }
    // The device got the command (reported or not): the subscription acts.
    std::string_view ack;
    if (!ticket_text.empty() && cfg.acks.enabled()) {
      auto plan = plan_ack(cfg.acks, device_hash(dev.product_key, dev.device_key), cfg.seed);
      if (const auto* fault = cohort_fault_of(cfg, dev); fault && fault->silent) {
        plan.what = emulator_ack_plan::fate::lost;  // accepted, and never heard of again
        plan.second_ms = 0;
      }
      ack = to_string(plan.what);
      if (auto* sink = state_.acks())
        sink->issued(dev.product_key, dev.device_key, dev.gateway_product_key,
                     dev.gateway_device_key, ticket_text, plan);
    }
    if (!echo_.empty()) {  // the careless server of faults.echo_token
      if (!ticket_text.empty()) {
        echo_ticket_.assign(ticket_text).append(":").append(echo_);
        ticket_text = echo_ticket_;
      }
      echo_msg_.assign(msg).append(" for ").append(echo_);
      if (!msg.empty()) msg = echo_msg_;
    }
    ++executed;
    if (outcome == "failed") {
      ++failed;
      if (!failures_.empty()) failures_ += ',';
      failures_ += "{\"data\":";
      append_pkdk_json(failures_, dev);
      failures_ += ",\"msg\":";
      append_json_string(failures_, msg);
      failures_ += '}';
    } else if (outcome == "succeeded") {
      ++succeeded;
      if (!first_success) body_ += ',';
      first_success = false;
      body_ += "{\"data\":";
      append_pkdk_json(body_, dev);
      body_ += ",\"ticket\":\"";
      body_ += ticket_text;
      body_ += "\"}";
    } else {
      ++unreported;
    }
    if (dev.has_gateway()) {
      // Count in-flight devices per gateway ("gpk/gdk") until the answer is
      // written; a new string only for a gateway new to this request.
      const auto same = [&](const auto& g) {
        const std::string_view k = g.first;
        return k.size() == dev.gateway_product_key.size() + 1 + dev.gateway_device_key.size() &&
               k.starts_with(dev.gateway_product_key) && k.ends_with(dev.gateway_device_key) &&
               k[dev.gateway_product_key.size()] == '/';
      };
      auto it = std::find_if(gateways_.begin(), gateways_.end(), same);
      if (it == gateways_.end()) {
        std::string key;
        key.reserve(dev.gateway_product_key.size() + dev.gateway_device_key.size() + 1);
        key.append(dev.gateway_product_key).append("/").append(dev.gateway_device_key);
        gateways_.emplace_back(std::move(key), 1);
      } else {
        ++it->second;
      }
    }
    if (record) {
      auto out = std::back_inserter(record_);
      fmt::format_to(out, "{{\"request\":{},\"at_ms\":{},\"productKey\":", id, now_ms);
      append_json_string(record_, dev.product_key);
      record_ += ",\"deviceKey\":";
      append_json_string(record_, dev.device_key);
      record_ += ",\"gatewayProductKey\":";
      append_json_string_or_null(record_, dev.gateway_product_key);
      record_ += ",\"gatewayDeviceKey\":";
      append_json_string_or_null(record_, dev.gateway_device_key);
      fmt::format_to(out, ",\"outcome\":\"{}\",\"ticket\":", outcome);
      append_json_string_or_null(record_, ticket_text);
      record_ += ",\"msg\":";
      append_json_string_or_null(record_, msg);
      record_ += ",\"ack\":";
      append_json_string_or_null(record_, ack);
      record_ += "}\n";
    }
  }
  body_ += "],\"failureList\":[";
  body_ += failures_;
  body_ += "]}}";
  for (const auto& [gateway, n] : gateways_) state_.gateway_enter(gateway, n);

  state_.count(c::devices, executed);
  state_.count(c::succeeded, succeeded);
  state_.count(c::failed, failed);
  state_.count(c::unreported, unreported);
  if (record && !record_.empty()) record->write(record_);

  // Executed; now the answer may be lost or late.
  if (chance(id, freset) < cfg.faults.reset_ratio) {
    state_.count(c::resets);
    reply_.what = emulator_reply::kind::reset;
    return reply_;
  }
  if (chance(id, fstall) < cfg.faults.stall_ratio) {
    state_.count(c::stalls);
    reply_.delay_ms += cfg.faults.stall_ms;
  }
  reply_.status = 200;
  return reply_;
}

}  // namespace fleetcast
