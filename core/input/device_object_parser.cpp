// Device objects with simdjson On-Demand (see device_object_parser.hpp).
#include "core/input/device_object_parser.hpp"

#include "core/job/json_syntax.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace fleetcast {

namespace od = simdjson::ondemand;
static_assert(json_padding >= simdjson::SIMDJSON_PADDING);

struct device_object_parser::impl {
  od::parser parser;
};

device_object_parser::device_object_parser() : impl_(std::make_unique<impl>()) {}
device_object_parser::~device_object_parser() = default;

namespace {

std::string describe(simdjson::error_code e) {
  switch (e) {
    case simdjson::UTF8_ERROR:
      return "not valid UTF-8";
    case simdjson::INCORRECT_TYPE:
      return "a value of the wrong type";
    default:
      return fmt::format("not valid JSON ({})", simdjson::error_message(e));
  }
}

}  // namespace

bool device_object_parser::parse(const char* data, std::size_t size, std::size_t readable,
                                 pkdk_view& out, std::string& problem) {
  out = {};
  od::document doc;
  if (auto e = impl_->parser.iterate(data, size, readable).get(doc)) {
    problem = describe(e);
    return false;
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    if (e != simdjson::INCORRECT_TYPE) {
      problem = describe(e);
    } else if (auto syntax = find_json_syntax_error({data, size})) {
      problem = fmt::format("not valid JSON: {} at column {}", syntax->message, syntax->column);
    } else {
      problem = "not a JSON object";
    }
    return false;
  }
  bool seen[4] = {};
  for (auto field_result : obj) {
    od::field field;
    std::string_view key;
    if (auto e = std::move(field_result).get(field)) {
      problem = describe(e);
      return false;
    }
    if (auto e = field.unescaped_key().get(key)) {
      problem = describe(e);
      return false;
    }
    int which = -1;
    std::string_view* target = nullptr;
    if (key == "productKey") {
      which = 0, target = &out.product_key;
    } else if (key == "deviceKey") {
      which = 1, target = &out.device_key;
    } else if (key == "gatewayProductKey") {
      which = 2, target = &out.gateway_product_key;
    } else if (key == "gatewayDeviceKey") {
      which = 3, target = &out.gateway_device_key;
    } else {
      problem = fmt::format(
          "unknown field \"{}\" (expected productKey, deviceKey, gatewayProductKey, "
          "gatewayDeviceKey)",
          key);
      return false;
    }
    if (seen[which]) {
      problem = fmt::format("field \"{}\" given twice", key);
      return false;
    }
    seen[which] = true;
    od::value value = field.value();
    od::json_type type;
    if (auto e = value.type().get(type)) {
      problem = describe(e);
      return false;
    }
    if (type == od::json_type::null && which >= 2) continue;  // gateway keys may be null
    if (type != od::json_type::string) {
      problem = fmt::format("field \"{}\" must be a string", key);
      return false;
    }
    if (auto e = value.get_string().get(*target)) {
      problem = fmt::format("field \"{}\": {}", key, describe(e));
      return false;
    }
  }
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    problem = "content after the device object";
    return false;
  }
  if (!seen[0] || !seen[1]) {
    problem = fmt::format("missing field \"{}\"", seen[0] ? "deviceKey" : "productKey");
    return false;
  }
  return true;
}

}  // namespace fleetcast
