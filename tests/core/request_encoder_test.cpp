// Request bodies: round trips through simdjson, hostile strings, no
// allocation per device.
#include "core/protocol/request_encoder.hpp"
#include "core/protocol/json_escape.hpp"
#include "core/protocol/validation.hpp"
#include "tests/alloc_counter.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>
#include <vector>

using namespace fleetcast;

namespace {

command full_command(std::string data) {
  command c;
  c.type = 1;
  c.data = std::move(data);
  c.data_format = 2;
  c.qos = 0;
  c.is_cache = 1;
  c.cache_time = 3600;
  c.is_cover = 1;
  return c;
}

std::string str(simdjson::dom::element e) {
  return std::string(std::string_view(e));
}

}  // namespace

TEST_CASE("append_json_string escapes what JSON requires and keeps UTF-8") {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\re\tf\bg\fh\x01i\x1f");
  CHECK(out == R"("a\"b\\c\nd\re\tf\bg\fh\u0001i\u001f")");
  out.clear();
  append_json_string(out, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 /");
  CHECK(out == "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 /\"");
  out.clear();
  append_json_string_or_null(out, "");
  CHECK(out == "null");
}

TEST_CASE("append_json_string: every byte value at every place of a word and its tail") {
  // The word-at-a-time check must agree with escaping byte by byte: each of
  // the 256 byte values at each position of strings of 1 to 17 bytes.
  const auto by_byte = [](std::string_view in) {
    std::string out = "\"";
    for (unsigned char c : in) {
      if (c == '"' || c == '\\' || c < 0x20) {
        std::string plain;  // append_json_string's own output for this one byte
        append_json_string(plain, std::string_view(reinterpret_cast<const char*>(&c), 1));
        out += plain.substr(1, plain.size() - 2);
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  };
  std::size_t mismatches = 0;
  for (std::size_t len = 1; len <= 17; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int c = 0; c < 256; ++c) {
        std::string in(len, 'k');
        in[pos] = static_cast<char>(c);
        std::string out;
        append_json_string(out, in);
        mismatches += out != by_byte(in);
      }
    }
  }
  CHECK(mismatches == 0);
  std::string empty;
  append_json_string(empty, std::string_view{});  // no data pointer at all
  CHECK(empty == "\"\"");
}

TEST_CASE("a batch body round-trips field by field, hostile strings included") {
  const std::vector<std::string> hostile = {
      "plain",
      "quote\"inside",
      "back\\slash",
      "\\\"both\\\"",
      "new\nline\r\n",
      std::string("nul\0byte", 8),
      "\x01\x02\x1f\x7f",
      "\xE4\xB8\xAD\xE6\x96\x87",  // 中文
      "\xF0\x9F\x94\xA5",          // emoji
      "</script>{\"deviceList\":[]}",
      "]}{\"type\":9,",
  };
  const std::string data = "[{\"msg\":\"" + hostile[1] + "\"}]\t\\u0041";
  request_encoder encoder(full_command(data));

  batch b;
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    const auto& h = hostile[i];
    if (i % 2 == 0) {
      b.add(i, {"pk" + std::to_string(i), h, "", ""});
    } else {
      b.add(i, {h, "dk" + std::to_string(i), "gw" + h, h + "gw"});
    }
  }
  std::string body;
  encoder.encode(b, body);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(body).get(doc) == simdjson::SUCCESS);
  CHECK(int64_t(doc["type"]) == 1);
  CHECK(str(doc["data"]) == data);
  CHECK(int64_t(doc["dataFormat"]) == 2);
  CHECK(int64_t(doc["qos"]) == 0);
  CHECK(int64_t(doc["isCache"]) == 1);
  CHECK(int64_t(doc["cacheTime"]) == 3600);
  CHECK(int64_t(doc["isCover"]) == 1);
  simdjson::dom::array list = doc["deviceList"];
  REQUIRE(list.size() == hostile.size());
  std::size_t i = 0;
  for (simdjson::dom::element d : list) {
    const auto expect = b.device(i);
    CHECK(str(d["productKey"]) == expect.product_key);
    CHECK(str(d["deviceKey"]) == expect.device_key);
    if (expect.has_gateway()) {
      CHECK(str(d["gatewayProductKey"]) == expect.gateway_product_key);
      CHECK(str(d["gatewayDeviceKey"]) == expect.gateway_device_key);
    } else {
      // Gateway keys are left out, not sent empty.
      CHECK(d["gatewayProductKey"].error() == simdjson::NO_SUCH_FIELD);
      CHECK(d["gatewayDeviceKey"].error() == simdjson::NO_SUCH_FIELD);
    }
    ++i;
  }
}

TEST_CASE("absent optional fields are not sent") {
  command c;
  c.type = 2;
  c.data = "[]";
  request_encoder encoder(c);
  std::string body;
  const pkdk_view devices[] = {{"p", "d", "", ""}};
  encoder.encode(devices, body);
  CHECK(body == R"({"type":2,"data":"[]","deviceList":[{"productKey":"p","deviceKey":"d"}]})");
  CHECK(encoder.fixed_size() ==
        body.size() - std::string(R"({"productKey":"p","deviceKey":"d"})").size());
}

TEST_CASE("the span and batch forms encode the same body, encode appends") {
  request_encoder encoder(full_command("x"));
  batch b;
  std::vector<pkdk_view> views;
  b.add(0, {"a", "b", "", ""});
  b.add(1, {"c", "d", "e", "f"});
  views.push_back(b.device(0));
  views.push_back(b.device(1));
  std::string one = "prefix:";
  std::string two = "prefix:";
  encoder.encode(b, one);
  encoder.encode(views, two);
  CHECK(one == two);
  CHECK(one.starts_with("prefix:{"));
}

TEST_CASE("encoding a batch into a warm buffer allocates nothing") {
  request_encoder encoder(full_command("[{\"switch\":true}]"));
  batch b;
  for (int i = 0; i < 500; ++i) {
    b.add(i, {"p1a2b3c4", "8600000000" + std::to_string(10000 + i), "", ""});
  }
  std::string body;
  encoder.encode(b, body);  // warms the buffer
  const auto size = body.size();
  test::counting_scope scope;
  body.clear();
  encoder.encode(b, body);
  CHECK(scope.allocations() == 0);
  CHECK(body.size() == size);
}

TEST_CASE("scan_key: one look says ASCII and plain, for every byte at every place") {
  std::size_t wrong = 0;
  for (std::size_t len = 1; len <= 17; ++len) {
    for (std::size_t pos = 0; pos < len; ++pos) {
      for (int c = 0; c < 256; ++c) {
        std::string in(len, 'k');
        in[pos] = static_cast<char>(c);
        const auto scan = scan_key(in);
        wrong += scan.ascii != (c < 0x80);
        wrong += scan.plain != !(c == '"' || c == '\\' || c < 0x20);
      }
    }
  }
  CHECK(wrong == 0);
  CHECK(scan_key("").plain);
  CHECK(scan_key("").ascii);
}

TEST_CASE("a device validation found plain is written as one that is checked") {
  pkdk_view d{"p1a2b3c4", "860000000000001", "gw", "g1"};
  std::string checked, copied;
  append_pkdk_json(checked, d);
  REQUIRE(!validate_device(d, &d.plain));
  CHECK(d.plain);
  append_pkdk_json(copied, d);
  CHECK(copied == checked);
  // A key that needs escaping is never marked plain.
  pkdk_view q{"p1", "d\"1", "", ""};
  bool plain = true;
  REQUIRE(!validate_device(q, &plain));
  CHECK_FALSE(plain);
  // Non-ASCII UTF-8 needs no escaping: plain.
  REQUIRE(!validate_device({"p1", "d\xC3\xA9", "", ""}, &plain));
  CHECK(plain);
  // The flag is not part of the address.
  CHECK(d == pkdk_view{"p1a2b3c4", "860000000000001", "gw", "g1"});
}
