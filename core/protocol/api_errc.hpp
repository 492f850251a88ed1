// api_errc: the body codes of the batchControlDevice reference page, with
// their own numbers, as a boost::system error category ("fleetcast.api").
#pragma once

#include <boost/system/error_code.hpp>

#include <string_view>
#include <type_traits>

namespace fleetcast {

enum class api_errc : int {
  ok = 200,
  token_verification_failed = 5032,
  no_permission = 5041,
  missing_type = 5070,
  invalid_type = 5071,
  missing_data_format = 5072,
  invalid_data_format = 5073,
  missing_data = 5074,
  data_too_long = 5075,
  missing_token = 5106,
  missing_device_list = 5311,
  device_list_too_long = 5312,
  missing_cache_time = 5328,
  cache_time_out_of_range = 5329,
  is_cache_out_of_range = 5330,
  is_cover_out_of_range = 5331,
  batch_control_failed = 5340,
};

const boost::system::error_category& api_category() noexcept;

inline boost::system::error_code make_error_code(api_errc e) noexcept {
  return {static_cast<int>(e), api_category()};
}

// The reference page's description of a code, or "" for a code it does not list.
std::string_view api_code_description(int code) noexcept;

}  // namespace fleetcast

template <>
struct boost::system::is_error_code_enum<fleetcast::api_errc> : std::true_type {};
