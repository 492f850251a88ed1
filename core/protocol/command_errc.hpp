// command_errc: rules fleetcast enforces before sending that the reference
// page does not number (a value the platform would reject or misread).
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace fleetcast {

enum class command_errc : int {
  qos_out_of_range = 1,    // qos is neither 0 nor 1
  data_not_hex = 2,        // passthrough hex data with an odd count or a non-hex digit
  data_not_json = 3,       // property or service data that is not valid JSON
  empty_product_key = 4,   // a device without productKey
  empty_device_key = 5,    // a device without deviceKey
  incomplete_gateway = 6,  // only one of gatewayProductKey / gatewayDeviceKey
  invalid_utf8 = 7,        // a string that is not valid UTF-8 (JSON requires it)
  key_too_long = 8,        // a key longer than max_key_bytes
};

const boost::system::error_category& command_category() noexcept;

inline boost::system::error_code make_error_code(command_errc e) noexcept {
  return {static_cast<int>(e), command_category()};
}

}  // namespace fleetcast

template <>
struct boost::system::is_error_code_enum<fleetcast::command_errc> : std::true_type {};
