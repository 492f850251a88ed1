// Every rule of the reference page with its code, at each boundary.
#include "core/protocol/validation.hpp"
#include "core/protocol/api_errc.hpp"
#include "core/protocol/command_errc.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace fleetcast;

namespace {

command valid_property() {
  command c;
  c.type = 2;
  c.data = R"([{"switch":true}])";
  return c;
}

command valid_passthrough(std::string data = "A1B2", int format = 1) {
  command c;
  c.type = 1;
  c.data = std::move(data);
  c.data_format = format;
  return c;
}

// The single code a command fails with (or 0 when valid).
int first_code(const command& c) {
  auto errors = validate_command(c);
  return errors.empty() ? 0 : errors.front().code.value();
}

bool has(const std::vector<validation_error>& errors, boost::system::error_code code) {
  for (const auto& e : errors) {
    if (e.code == code) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("valid commands pass") {
  CHECK(validate_command(valid_property()).empty());
  CHECK(validate_command(valid_passthrough()).empty());
  CHECK(validate_command(valid_passthrough("hello", 2)).empty());
  command service;
  service.type = 3;
  service.data = R"([{"reboot":[{"delay":"5"}]}])";
  CHECK(validate_command(service).empty());
}

TEST_CASE("5070 missing type and 5071 type out of range") {
  command c = valid_property();
  c.type.reset();
  auto errors = validate_command(c);
  REQUIRE(!errors.empty());
  CHECK(errors[0].code == api_errc::missing_type);
  CHECK(errors[0].code.value() == 5070);
  CHECK(errors[0].field == "type");
  for (int bad : {0, 4, -1}) {
    c.type = bad;
    CHECK(first_code(c) == 5071);
  }
  for (int good : {1, 2, 3}) {
    c.type = good;
    c.data_format = 2;
    CHECK(first_code(c) != 5071);
  }
}

TEST_CASE("5072 passthrough needs dataFormat, 5073 dataFormat out of range") {
  command c = valid_passthrough();
  c.data_format.reset();
  auto errors = validate_command(c);
  REQUIRE(!errors.empty());
  CHECK(errors[0].code.value() == 5072);
  CHECK(errors[0].field == "dataFormat");
  CHECK(errors[0].message.find("dataFormat") != std::string::npos);
  for (int bad : {0, 3, -2}) {
    c.data_format = bad;
    CHECK(first_code(c) == 5073);
  }
  // dataFormat is not required for property commands, but must be in range if given.
  command p = valid_property();
  CHECK(first_code(p) == 0);
  p.data_format = 9;
  CHECK(first_code(p) == 5073);
}

TEST_CASE("5074 data missing or empty") {
  command c = valid_property();
  c.data.reset();
  CHECK(first_code(c) == 5074);
  c.data = "";
  CHECK(first_code(c) == 5074);
  CHECK(validate_command(c)[0].field == "data");
}

TEST_CASE("5075 passthrough data at most 4096 characters") {
  CHECK(first_code(valid_passthrough(std::string(4096, 'a'), 2)) == 0);
  CHECK(first_code(valid_passthrough(std::string(4097, 'a'), 2)) == 5075);
  CHECK(first_code(valid_passthrough(std::string(4096, 'F'), 1)) == 0);
  CHECK(first_code(valid_passthrough(std::string(4098, 'F'), 1)) == 5075);
  // Characters, not bytes: 4096 two-byte characters are within the limit.
  std::string wide;
  for (int i = 0; i < 4096; ++i) wide += "\xC3\xA9";  // é
  CHECK(first_code(valid_passthrough(wide, 2)) == 0);
  CHECK(first_code(valid_passthrough(wide + "x", 2)) == 5075);
  // Only passthrough is limited.
  command p = valid_property();
  p.data = "[" + std::string(5000, ' ') + "]";
  CHECK(first_code(p) == 0);
}

TEST_CASE("hex data: even count of hex digits") {
  CHECK(first_code(valid_passthrough("0a1B", 1)) == 0);
  auto odd = validate_command(valid_passthrough("0a1", 1));
  REQUIRE(odd.size() == 1);
  CHECK(odd[0].code == command_errc::data_not_hex);
  CHECK(odd[0].message.find("odd") != std::string::npos);
  auto bad = validate_command(valid_passthrough("0a1g", 1));
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].code == command_errc::data_not_hex);
  CHECK(bad[0].message.find("character 4") != std::string::npos);
  // Text passthrough may hold anything.
  CHECK(first_code(valid_passthrough("xyz", 2)) == 0);
}

TEST_CASE("property and service data must be JSON") {
  for (int type : {2, 3}) {
    command c = valid_property();
    c.type = type;
    c.data = R"([{"switch":tru}])";
    auto errors = validate_command(c);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].code == command_errc::data_not_json);
    CHECK(errors[0].field == "data");
    c.data = R"([{"key":[{"k1":"v1"},{"k2":"v2"}]}])";
    CHECK(validate_command(c).empty());
  }
}

TEST_CASE("data must be UTF-8") {
  command c = valid_passthrough("ab\xFF", 2);
  auto errors = validate_command(c);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == command_errc::invalid_utf8);
}

TEST_CASE("5330 isCache, 5328 and 5329 cacheTime, 5331 isCover") {
  command c = valid_property();
  for (int good : {1, 2}) {
    c.is_cache = good;
    c.cache_time = 60;
    CHECK(first_code(c) == 0);
  }
  for (int bad : {0, 3}) {
    c.is_cache = bad;
    CHECK(first_code(c) == 5330);
  }
  c.is_cache = 1;
  c.cache_time.reset();
  CHECK(first_code(c) == 5328);
  CHECK(validate_command(c)[0].field == "cacheTime");
  c.cache_time = 0;
  CHECK(first_code(c) == 5329);
  c.cache_time = 1;
  CHECK(first_code(c) == 0);
  c.cache_time = 7776000;
  CHECK(first_code(c) == 0);
  c.cache_time = 7776001;
  CHECK(first_code(c) == 5329);
  c.cache_time = -5;
  CHECK(first_code(c) == 5329);
  // cacheTime is not required without cache, but is range-checked when given.
  c.is_cache = 2;
  c.cache_time.reset();
  CHECK(first_code(c) == 0);
  c.cache_time = 7776001;
  CHECK(first_code(c) == 5329);
  c.cache_time.reset();
  for (int good : {1, 2}) {
    c.is_cover = good;
    CHECK(first_code(c) == 0);
  }
  for (int bad : {0, 3}) {
    c.is_cover = bad;
    CHECK(first_code(c) == 5331);
  }
}

TEST_CASE("qos is 0 or 1") {
  command c = valid_property();
  c.qos = 0;
  CHECK(first_code(c) == 0);
  c.qos = 1;
  CHECK(first_code(c) == 0);
  c.qos = 2;
  auto errors = validate_command(c);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].code == command_errc::qos_out_of_range);
  CHECK(errors[0].field == "qos");
  c.qos = -1;
  CHECK(validate_command(c)[0].code == command_errc::qos_out_of_range);
}

TEST_CASE("all problems are reported, the platform's first") {
  command c;
  c.type = 9;
  c.is_cache = 1;
  c.qos = 5;
  c.is_cover = 7;
  auto errors = validate_command(c);
  CHECK(errors.size() == 5);
  CHECK(errors[0].code.value() == 5071);
  CHECK(has(errors, api_errc::missing_data));
  CHECK(has(errors, api_errc::missing_cache_time));
  CHECK(has(errors, api_errc::is_cover_out_of_range));
  CHECK(has(errors, command_errc::qos_out_of_range));
}

TEST_CASE("5311 empty device list, 5312 over the limit") {
  auto empty = validate_device_count(0, 100);
  REQUIRE(empty);
  CHECK(empty->code.value() == 5311);
  CHECK(!validate_device_count(1, 100));
  CHECK(!validate_device_count(100, 100));
  auto over = validate_device_count(101, 100);
  REQUIRE(over);
  CHECK(over->code.value() == 5312);
  CHECK(over->message.find("101") != std::string::npos);
  CHECK(!validate_device_count(1'000'000, 0));  // no known limit
}

TEST_CASE("devices: empty keys, half a gateway, over-long and non-UTF-8 keys") {
  CHECK(!validate_device({"pk", "dk", "", ""}));
  CHECK(!validate_device({"pk", "dk", "gpk", "gdk"}));
  CHECK(validate_device({"", "dk", "", ""})->code == command_errc::empty_product_key);
  CHECK(validate_device({"pk", "", "", ""})->code == command_errc::empty_device_key);
  auto half = validate_device({"pk", "dk", "gpk", ""});
  REQUIRE(half);
  CHECK(half->code == command_errc::incomplete_gateway);
  CHECK(half->field == "gatewayDeviceKey");
  CHECK(validate_device({"pk", "dk", "", "gdk"})->field == "gatewayProductKey");
  const std::string longest(max_key_bytes, 'k');
  CHECK(!validate_device({"pk", longest, "", ""}));
  CHECK(validate_device({"pk", longest + "k", "", ""})->code == command_errc::key_too_long);
  CHECK(validate_device({"pk", "d\xC3", "", ""})->code == command_errc::invalid_utf8);
}

TEST_CASE("codes carry the reference page's numbers and descriptions") {
  CHECK(make_error_code(api_errc::device_list_too_long).value() == 5312);
  CHECK(make_error_code(api_errc::device_list_too_long).message() ==
        "Total number of devices in list exceeds range");
  CHECK(make_error_code(api_errc::batch_control_failed).message() ==
        "Batch control devices failed");
  CHECK(boost::system::error_code(9999, api_category()).message() == "platform code 9999");
  CHECK(api_code_description(5032) == "Token verification failed");
}
