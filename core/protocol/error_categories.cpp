// The error categories of core: api_errc (the reference page's codes) and
// command_errc (fleetcast's own pre-send rules).
#include "core/protocol/api_errc.hpp"
#include "core/protocol/command_errc.hpp"

#include <string>

namespace fleetcast {

std::string_view api_code_description(int code) noexcept {
  switch (code) {
    case 200:
      return "Batch control devices successful";
    case 5032:
      return "Token verification failed";
    case 5041:
      return "No permission";
    case 5070:
      return "Please enter type";
    case 5071:
      return "Type error, types are 1: Passthrough 2: Property 3: Service";
    case 5072:
      return "Please enter data type";
    case 5073:
      return "Data type error, data types are 1: Hex 2: Text (when type is passthrough, "
             "dataFormat must be specified)";
    case 5074:
      return "Please enter device control command";
    case 5075:
      return "Device control command length cannot exceed 4096";
    case 5106:
      return "Please enter token";
    case 5311:
      return "Please enter device list";
    case 5312:
      return "Total number of devices in list exceeds range";
    case 5328:
      return "Please enter cache time";
    case 5329:
      return "Cache time out of range";
    case 5330:
      return "Whether to enable cache is out of range";
    case 5331:
      return "Whether to overwrite previously sent identical commands is out of range";
    case 5340:
      return "Batch control devices failed";
    default:
      return "";
  }
}

namespace {

class api_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fleetcast.api"; }
  std::string message(int code) const override {
    auto d = api_code_description(code);
    return d.empty() ? "platform code " + std::to_string(code) : std::string(d);
  }
};

class command_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fleetcast.command"; }
  std::string message(int code) const override {
    switch (static_cast<command_errc>(code)) {
      case command_errc::qos_out_of_range:
        return "qos out of range (0 or 1)";
      case command_errc::data_not_hex:
        return "data is not an even number of hex digits";
      case command_errc::data_not_json:
        return "data is not valid JSON";
      case command_errc::empty_product_key:
        return "productKey is empty";
      case command_errc::empty_device_key:
        return "deviceKey is empty";
      case command_errc::incomplete_gateway:
        return "gatewayProductKey and gatewayDeviceKey must be given together";
      case command_errc::invalid_utf8:
        return "not valid UTF-8";
      case command_errc::key_too_long:
        return "key too long";
    }
    return "command rule " + std::to_string(code);
  }
};

}  // namespace

const boost::system::error_category& api_category() noexcept {
  static const api_category_impl instance;
  return instance;
}

const boost::system::error_category& command_category() noexcept {
  static const command_category_impl instance;
  return instance;
}

}  // namespace fleetcast
