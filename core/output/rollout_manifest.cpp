// The rollout's identity in its output folder (see rollout_manifest.hpp).
#include "core/output/rollout_manifest.hpp"

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>

namespace fleetcast {
namespace {

struct int_field {
  std::string_view name;
  std::optional<std::int64_t> command::*member;
};
constexpr std::array<int_field, 6> int_fields{{{"type", &command::type},
                                               {"dataFormat", &command::data_format},
                                               {"qos", &command::qos},
                                               {"isCache", &command::is_cache},
                                               {"cacheTime", &command::cache_time},
                                               {"isCover", &command::is_cover}}};

std::string text_of(const std::optional<std::int64_t>& v) {
  return v ? fmt::format("{}", *v) : std::string("absent");
}

// A short, stable fingerprint of the command's data for messages (FNV-1a):
// the data itself may be long, and messages stay one line.
std::string data_text(const std::optional<std::string>& d) {
  if (!d) return "absent";
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : *d) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("{} bytes, hash {:016x}", d->size(), h);
}

}  // namespace

std::string rollout_manifest::to_json() const {
  std::string out = "{\"fleetcast_rollout\":1,\"devices\":{\"source\":";
  append_json_string(out, devices_source);
  out += ",\"sha256\":";
  append_json_string_or_null(out, devices_sha256 ? std::string_view(*devices_sha256) : "");
  out += "},\"endpoint\":";
  append_json_string(out, endpoint);
  out += ",\"command\":{\"data\":";
  if (cmd.data) {
    append_json_string(out, *cmd.data);
  } else {
    out += "null";
  }
  for (const auto& f : int_fields) {
    const auto& v = cmd.*f.member;
    out += fmt::format(",\"{}\":{}", f.name, v ? fmt::format("{}", *v) : "null");
  }
  out += "}}\n";
  return out;
}

std::optional<rollout_manifest> rollout_manifest::parse(std::string_view json, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::padded_string text(json);
  rollout_manifest m;
  auto fail = [&](std::string_view what) {
    error = fmt::format("not a rollout record ({})", what);
    return std::nullopt;
  };
  if (parser.parse(text).get(doc)) return fail("not JSON");
  int64_t version = 0;
  if (doc["fleetcast_rollout"].get(version) || version != 1) return fail("no version 1");
  std::string_view s;
  if (doc["devices"]["source"].get(s)) return fail("devices.source");
  m.devices_source = std::string(s);
  simdjson::dom::element sha;
  if (doc["devices"]["sha256"].get(sha)) return fail("devices.sha256");
  if (!sha.is_null()) {
    if (sha.get(s)) return fail("devices.sha256");
    m.devices_sha256 = std::string(s);
  }
  if (doc["endpoint"].get(s)) return fail("endpoint");
  m.endpoint = std::string(s);
  simdjson::dom::object cmd;
  if (doc["command"].get(cmd)) return fail("command");
  simdjson::dom::element v;
  if (cmd["data"].get(v)) return fail("command.data");
  if (!v.is_null()) {
    if (v.get(s)) return fail("command.data");
    m.cmd.data = std::string(s);
  }
  for (const auto& f : int_fields) {
    if (cmd[f.name].get(v)) return fail(f.name);
    if (v.is_null()) continue;
    int64_t n = 0;
    if (v.get(n)) return fail(f.name);
    m.cmd.*f.member = n;
  }
  return m;
}

std::vector<std::string> rollout_manifest::differences(const rollout_manifest& now) const {
  std::vector<std::string> out;
  // By content: the same list read through another path is the same list.
  if (devices_sha256 != now.devices_sha256) {
    out.push_back(
        fmt::format("the device list: the first run sent {} (sha256 {}), this one reads "
                    "{} (sha256 {})",
                    devices_source, devices_sha256.value_or("unknown"), now.devices_source,
                    now.devices_sha256.value_or("unknown")));
  }
  if (endpoint != now.endpoint) {
    out.push_back(fmt::format("the endpoint: the first run sent to {}, this one to {}", endpoint,
                              now.endpoint));
  }
  if (cmd.data != now.cmd.data) {
    out.push_back(fmt::format("command.data: the first run sent {}, this one {}",
                              data_text(cmd.data), data_text(now.cmd.data)));
  }
  for (const auto& f : int_fields) {
    if (cmd.*f.member != now.cmd.*f.member) {
      out.push_back(fmt::format("command.{}: the first run sent {}, this one {}", f.name,
                                text_of(cmd.*f.member), text_of(now.cmd.*f.member)));
    }
  }
  return out;
}

}  // namespace fleetcast
