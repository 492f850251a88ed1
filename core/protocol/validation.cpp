// Command, device and device-list rules (see validation.hpp).
#include "core/protocol/validation.hpp"

#include "core/protocol/json_escape.hpp"

#include "core/protocol/api_errc.hpp"
#include "core/protocol/command_errc.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace fleetcast {
namespace {

bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_valid_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  return parser.parse(padded).error() == simdjson::SUCCESS;
}

}  // namespace

std::size_t utf8_length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // count every byte that starts a character
  return n;
}

bool is_valid_utf8(std::string_view s) noexcept {
  // Keys are short and nearly always ASCII: settle those without a call.
  unsigned char high = 0;
  for (unsigned char c : s) high |= c;
  return high < 0x80 || simdjson::validate_utf8(s.data(), s.size());
}

std::vector<validation_error> validate_command(const command& cmd) {
  std::vector<validation_error> errors;
  auto add = [&](auto code, std::string_view field, std::string message) {
    errors.push_back({make_error_code(code), std::string(field), std::move(message)});
  };

  bool passthrough = false;
  if (!cmd.type) {
    add(api_errc::missing_type, "type", "type is required (1 passthrough, 2 property, 3 service)");
  } else if (*cmd.type < 1 || *cmd.type > 3) {
    add(api_errc::invalid_type, "type",
        fmt::format("type {} is not 1 (passthrough), 2 (property) or 3 (service)", *cmd.type));
  } else {
    passthrough = *cmd.type == static_cast<int>(command_type::passthrough);
  }

  if (passthrough && !cmd.data_format) {
    add(api_errc::missing_data_format, "dataFormat",
        "dataFormat is required when type is 1 (passthrough): 1 hex or 2 text");
  } else if (cmd.data_format && *cmd.data_format != 1 && *cmd.data_format != 2) {
    add(api_errc::invalid_data_format, "dataFormat",
        fmt::format("dataFormat {} is not 1 (hex) or 2 (text)", *cmd.data_format));
  }

  if (!cmd.data || cmd.data->empty()) {
    add(api_errc::missing_data, "data", "data (the device control command) is required");
  } else if (!is_valid_utf8(*cmd.data)) {
    add(command_errc::invalid_utf8, "data", "data is not valid UTF-8");
  } else if (passthrough) {
    const auto length = utf8_length(*cmd.data);
    if (length > max_passthrough_data_chars) {
      add(api_errc::data_too_long, "data",
          fmt::format("data is {} characters; a passthrough command allows at most {}", length,
                      max_passthrough_data_chars));
    }
    if (cmd.data_format == static_cast<int>(data_format::hex)) {
      const auto& d = *cmd.data;
      std::size_t bad = d.size();
      for (std::size_t i = 0; i < d.size(); ++i) {
        if (!is_hex_digit(d[i])) {
          bad = i;
          break;
        }
      }
      if (bad != d.size()) {
        add(command_errc::data_not_hex, "data",
            fmt::format("data is hex (dataFormat 1) but character {} is not a hex digit", bad + 1));
      } else if (d.size() % 2 != 0) {
        add(command_errc::data_not_hex, "data",
            fmt::format("data is hex (dataFormat 1) but has an odd number of digits ({})",
                        d.size()));
      }
    }
  } else if (cmd.type && (*cmd.type == 2 || *cmd.type == 3) && !is_valid_json(*cmd.data)) {
    add(command_errc::data_not_json, "data",
        fmt::format("data must be a JSON string for type {} ({}), e.g. [{{\"switch\":true}}]",
                    *cmd.type, *cmd.type == 2 ? "property" : "service"));
  }

  if (cmd.is_cache && *cmd.is_cache != 1 && *cmd.is_cache != 2) {
    add(api_errc::is_cache_out_of_range, "isCache",
        fmt::format("isCache {} is not 1 (enable) or 2 (disable)", *cmd.is_cache));
  }
  const bool caching = cmd.is_cache == 1;
  if (caching && !cmd.cache_time) {
    add(api_errc::missing_cache_time, "cacheTime", "cacheTime is required when isCache is 1");
  } else if (cmd.cache_time &&
             (*cmd.cache_time < min_cache_time_s || *cmd.cache_time > max_cache_time_s)) {
    add(api_errc::cache_time_out_of_range, "cacheTime",
        fmt::format("cacheTime {} is outside {}..{} seconds", *cmd.cache_time, min_cache_time_s,
                    max_cache_time_s));
  }
  if (cmd.is_cover && *cmd.is_cover != 1 && *cmd.is_cover != 2) {
    add(api_errc::is_cover_out_of_range, "isCover",
        fmt::format("isCover {} is not 1 (overwrite) or 2 (don't overwrite)", *cmd.is_cover));
  }
  if (cmd.qos && *cmd.qos != 0 && *cmd.qos != 1) {
    add(command_errc::qos_out_of_range, "qos", fmt::format("qos {} is not 0 or 1", *cmd.qos));
  }
  return errors;
}

std::optional<validation_error> validate_device(const pkdk_view& device, bool* plain) {
  const std::pair<const char*, std::string_view> keys[4] = {
      {"productKey", device.product_key},
      {"deviceKey", device.device_key},
      {"gatewayProductKey", device.gateway_product_key},
      {"gatewayDeviceKey", device.gateway_device_key}};
  bool all_plain = true;
  for (const auto& [field, value] : keys) {
    if (value.size() > max_key_bytes) {
      return validation_error{make_error_code(command_errc::key_too_long), field,
                              fmt::format("{} is {} bytes; at most {} are accepted", field,
                                          value.size(), max_key_bytes)};
    }
    const auto scan = scan_key(value);  // UTF-8 and escaping in one look
    all_plain = all_plain && scan.plain;
    if (!scan.ascii && !simdjson::validate_utf8(value.data(), value.size())) {
      return validation_error{make_error_code(command_errc::invalid_utf8), field,
                              fmt::format("{} is not valid UTF-8", field)};
    }
  }
  if (device.product_key.empty()) {
    return validation_error{make_error_code(command_errc::empty_product_key), "productKey",
                            "productKey is empty"};
  }
  if (device.device_key.empty()) {
    return validation_error{make_error_code(command_errc::empty_device_key), "deviceKey",
                            "deviceKey is empty"};
  }
  if (device.gateway_product_key.empty() != device.gateway_device_key.empty()) {
    return validation_error{
        make_error_code(command_errc::incomplete_gateway),
        device.gateway_product_key.empty() ? "gatewayProductKey" : "gatewayDeviceKey",
        "gatewayProductKey and gatewayDeviceKey must be given together"};
  }
  if (plain) *plain = all_plain;
  return std::nullopt;
}

std::optional<validation_error> validate_device_count(std::size_t count, std::size_t limit) {
  if (count == 0) {
    return validation_error{make_error_code(api_errc::missing_device_list), "deviceList",
                            "deviceList is empty"};
  }
  if (limit != 0 && count > limit) {
    return validation_error{
        make_error_code(api_errc::device_list_too_long), "deviceList",
        fmt::format("deviceList has {} devices; the limit is {}", count, limit)};
  }
  return std::nullopt;
}

}  // namespace fleetcast
