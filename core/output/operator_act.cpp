// Operator requests and their outcomes (see operator_act.hpp).
#include <fleetcast/core/output/operator_act.hpp>

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace fleetcast {

std::string_view to_string(operator_act a) noexcept {
  switch (a) {
    case operator_act::approve:
      return "approve";
    case operator_act::pause:
      return "pause";
    case operator_act::resume:
      return "continue";
  }
  return "?";
}

std::optional<operator_act> parse_operator_act(std::string_view word) noexcept {
  for (auto a : {operator_act::approve, operator_act::pause, operator_act::resume})
    if (to_string(a) == word) return a;
  return std::nullopt;
}

namespace {
// {"id":..,"act":..,"by":..,"<at_key>":.. (the object left open).
std::string request_fields(const act_request& r, std::string_view at_key) {
  std::string out = "{\"id\":";
  append_json_string(out, r.id);
  out += ",\"act\":";
  append_json_string(out, to_string(r.act));
  out += ",\"by\":";
  append_json_string(out, r.by);
  out += ",\"";
  out += at_key;
  out += "\":";
  append_json_string(out, r.at);
  return out;
}
}  // namespace

std::string to_json(const act_request& r) {
  return request_fields(r, "at") + "}\n";
}

std::optional<act_request> parse_act_request(std::string_view text, std::string& error) {
  if (text.size() > 4096) {
    error = "a request is at most 4096 bytes";
    return std::nullopt;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const simdjson::padded_string padded(text);
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
    error = "not JSON";
    return std::nullopt;
  }
  act_request r;
  std::string_view id, act, by, at;
  if (root["id"].get_string().get(id) != simdjson::SUCCESS ||
      root["act"].get_string().get(act) != simdjson::SUCCESS ||
      root["by"].get_string().get(by) != simdjson::SUCCESS ||
      root["at"].get_string().get(at) != simdjson::SUCCESS) {
    error = "needs the strings id, act, by and at";
    return std::nullopt;
  }
  const auto a = parse_operator_act(act);
  if (!a) {
    error = fmt::format("act \"{}\" is not approve, pause or continue", act.substr(0, 40));
    return std::nullopt;
  }
  r.id = std::string(id.substr(0, 64));
  r.act = *a;
  r.by = std::string(by.substr(0, 256));
  r.at = std::string(at.substr(0, 40));
  return r;
}

std::string outcome_line(const act_request& r, const act_result& result, std::string_view at) {
  std::string out = request_fields(r, "asked_at");
  out += ",\"at\":";
  append_json_string(out, at);
  out += result.applied ? ",\"applied\":true" : ",\"applied\":false";
  out += ",\"result\":";
  append_json_string(out, result.text);
  out += "}\n";
  return out;
}

}  // namespace fleetcast
