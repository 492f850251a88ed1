// Request body encoding (see request_encoder.hpp).
#include "core/protocol/request_encoder.hpp"

#include "core/protocol/json_escape.hpp"

#include <fmt/format.h>

namespace fleetcast {
namespace {

void append_int_field(std::string& out, const char* name, const std::optional<std::int64_t>& v) {
  if (v) fmt::format_to(std::back_inserter(out), ",\"{}\":{}", name, *v);
}

}  // namespace

request_encoder::request_encoder(const command& cmd) {
  prefix_.push_back('{');  // (not `= "{"`: GCC 12 false -Wrestrict, bug 105329)
  fmt::format_to(std::back_inserter(prefix_), "\"type\":{}", cmd.type.value_or(0));
  prefix_ += ",\"data\":";
  append_json_string(prefix_, cmd.data.value_or(""));
  append_int_field(prefix_, "dataFormat", cmd.data_format);
  append_int_field(prefix_, "qos", cmd.qos);
  append_int_field(prefix_, "isCache", cmd.is_cache);
  append_int_field(prefix_, "cacheTime", cmd.cache_time);
  append_int_field(prefix_, "isCover", cmd.is_cover);
  prefix_ += ",\"deviceList\":[";
}

std::size_t pkdk_json_bound(const pkdk_view& d) noexcept {
  return 64 + json_string_bound(d.product_key.size()) + json_string_bound(d.device_key.size()) +
         json_string_bound(d.gateway_product_key.size()) +
         json_string_bound(d.gateway_device_key.size());
}

char* write_pkdk_json(char* w, const pkdk_view& d) noexcept {
  // Keys that validation found plain are copied without looking again.
  const auto key = d.plain ? write_plain_json_string : write_json_string;
  w = write_bytes(w, "{\"productKey\":");
  w = key(w, d.product_key);
  w = write_bytes(w, ",\"deviceKey\":");
  w = key(w, d.device_key);
  if (!d.gateway_product_key.empty()) {
    w = write_bytes(w, ",\"gatewayProductKey\":");
    w = key(w, d.gateway_product_key);
  }
  if (!d.gateway_device_key.empty()) {
    w = write_bytes(w, ",\"gatewayDeviceKey\":");
    w = key(w, d.gateway_device_key);
  }
  *w++ = '}';
  return w;
}

void append_pkdk_json(std::string& out, const pkdk_view& d) {
  append_bounded(out, pkdk_json_bound(d), [&](char* w) { return write_pkdk_json(w, d); });
}

void request_encoder::encode(const batch& devices, std::string& out) const {
  out += prefix_;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (i != 0) out += ',';
    append_pkdk_json(out, devices.device(i));
  }
  out += "]}";
}

void request_encoder::encode(std::span<const pkdk_view> devices, std::string& out) const {
  out += prefix_;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (i != 0) out += ',';
    append_pkdk_json(out, devices[i]);
  }
  out += "]}";
}

}  // namespace fleetcast
