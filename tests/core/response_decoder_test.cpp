// Answers of every shape: complete, partial, odd, malformed, hostile.
#include "core/protocol/response_decoder.hpp"
#include "tests/alloc_counter.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>

using namespace fleetcast;

TEST_CASE("a complete answer decodes into code, msg, extMsg and both lists") {
  response_decoder d;
  const std::string body = R"({"code":200,"msg":"ok","extMsg":"more","data":{
    "successList":[{"data":{"productKey":"p1","deviceKey":"d1"},"ticket":"1234567890123456789"},
                   {"data":{"productKey":"p1","deviceKey":"d2","gatewayProductKey":"gp",
                            "gatewayDeviceKey":"gd"},"ticket":"2"}],
    "failureList":[{"data":{"productKey":"p2","deviceKey":"d3","gatewayProductKey":null,
                            "gatewayDeviceKey":""},"msg":"device offline"}]}})";
  REQUIRE(!d.decode(body));
  const auto& r = d.response();
  CHECK(r.ok());
  CHECK(r.code == 200);
  CHECK(r.msg == "ok");
  REQUIRE(r.ext_msg);
  CHECK(*r.ext_msg == "more");
  REQUIRE(r.successes.size() == 2);
  CHECK(r.successes[0].device.product_key == "p1");
  CHECK(r.successes[0].device.device_key == "d1");
  CHECK(r.successes[0].ticket == "1234567890123456789");
  CHECK(r.successes[1].device.gateway_product_key == "gp");
  CHECK(r.successes[1].device.gateway_device_key == "gd");
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].device.device_key == "d3");
  CHECK(r.failures[0].device.gateway_product_key.empty());
  CHECK(r.failures[0].msg == "device offline");
  CHECK(r.entries_without_device == 0);
}

TEST_CASE("missing data, null data, empty and missing lists, null extMsg") {
  response_decoder d;
  for (const char* body : {
           R"({"code":200,"msg":"ok"})",
           R"({"code":200,"msg":"ok","data":null,"extMsg":null})",
           R"({"code":200,"data":{}})",
           R"({"code":200,"data":{"successList":[],"failureList":[]}})",
           R"({"code":200,"data":{"successList":null,"failureList":null}})",
       }) {
    CAPTURE(body);
    REQUIRE(!d.decode(body));
    CHECK(d.response().code == 200);
    CHECK(d.response().successes.empty());
    CHECK(d.response().failures.empty());
    CHECK(!d.response().ext_msg);
  }
}

TEST_CASE("non-200 codes decode, whatever data holds") {
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":5312,"msg":"Total number of devices in list exceeds range",
                        "data":"whatever"})"));
  CHECK(d.response().code == 5312);
  CHECK(!d.response().ok());
  CHECK(d.response().msg == "Total number of devices in list exceeds range");
  REQUIRE(!d.decode(R"({"data":[1,2],"code":5032,"msg":"Token verification failed"})"));
  CHECK(d.response().code == 5032);
  // The example's placeholder 0 is not success.
  REQUIRE(!d.decode(R"({"code":0,"msg":""})"));
  CHECK(!d.response().ok());
}

TEST_CASE("unknown fields at every level are ignored") {
  response_decoder d;
  REQUIRE(!d.decode(R"({"traceId":"x","code":200,"nested":{"a":[{"b":{}}]},"data":{
      "page":1,"successList":[{"extra":[1,{"x":"y"}],"data":{"productKey":"p","deviceKey":"d",
      "deviceName":"lamp"},"ticket":"t","more":null}],"failureList":[],"total":1}})"));
  REQUIRE(d.response().successes.size() == 1);
  CHECK(d.response().successes[0].ticket == "t");
  CHECK(d.response().successes[0].device.device_key == "d");
}

TEST_CASE("escaped strings are unescaped, numeric tickets keep their digits") {
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"msg":"a\"b\u00e9","data":{"successList":[
      {"data":{"productKey":"p\\1","deviceKey":"d\n1"},"ticket":1234567890123456789012}],
      "failureList":[{"data":{"productKey":"p","deviceKey":"d"},"msg":null}]}})"));
  const auto& r = d.response();
  CHECK(r.msg == "a\"b\xC3\xA9");
  REQUIRE(r.successes.size() == 1);
  CHECK(r.successes[0].device.product_key == "p\\1");
  CHECK(r.successes[0].device.device_key == "d\n1");
  CHECK(r.successes[0].ticket == "1234567890123456789012");
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].msg.empty());
}

TEST_CASE("entries without a device are counted, not attributed") {
  response_decoder d;
  REQUIRE(!d.decode(R"({"code":200,"data":{"successList":[{"ticket":"1"},{"data":null,"ticket":"2"},
      {"data":{"productKey":"p","deviceKey":"d"},"ticket":"3"}],"failureList":[{"msg":"x"}]}})"));
  CHECK(d.response().successes.size() == 1);
  CHECK(d.response().entries_without_device == 3);
}

TEST_CASE("truncated, non-JSON and wrong-shaped bodies are error values") {
  response_decoder d;
  const std::string full =
      R"({"code":200,"msg":"ok","data":{"successList":[{"data":{"productKey":"p","deviceKey":"d"},"ticket":"t"}],"failureList":[]}})";
  // Every strict prefix of a valid answer is an error, never a crash.
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    CHECK(d.decode(full.substr(0, n)));
  }
  CHECK(!d.decode(full));

  CHECK(d.decode("<html><body>502 Bad Gateway</body></html>") == decode_errc::not_json);
  CHECK(d.decode("") == decode_errc::not_json);
  CHECK(d.decode("not json") == decode_errc::not_json);
  CHECK(d.decode("nullx") == decode_errc::not_json);
  CHECK(d.decode("null") == decode_errc::not_an_object);
  CHECK(d.decode("[1,2,3]") == decode_errc::not_an_object);
  CHECK(d.decode("200") == decode_errc::not_an_object);
  CHECK(d.decode(R"({"msg":"no code"})") == decode_errc::missing_code);
  CHECK(d.decode(R"({"code":"200"})") == decode_errc::wrong_type);
  CHECK(d.error_field() == "code");
  CHECK(d.decode(R"({"code":200.5})") == decode_errc::wrong_type);
  CHECK(d.decode(R"({"code":200} {"code":200})") == decode_errc::trailing_content);
  CHECK(d.decode(R"({"code":200,"data":"oops"})") == decode_errc::wrong_type);
  CHECK(d.error_field() == "data");
  CHECK(d.decode(R"({"code":200,"data":{"successList":{}}})") == decode_errc::wrong_type);
  CHECK(d.error_field() == "data.successList");
  CHECK(d.decode(
            R"({"code":200,"data":{"successList":[{"data":{"productKey":"p","deviceKey":7}}]}})") ==
        decode_errc::wrong_type);
  CHECK(d.error_field() == "data.successList[0].data.deviceKey");
  CHECK(d.decode(R"({"code":200,"data":{"failureList":[1]}})") == decode_errc::wrong_type);
  CHECK(d.error_field() == "data.failureList[0]");
  CHECK(d.decode("{\"code\":200,\"msg\":\"\xFF\"}") == decode_errc::not_json);
}

TEST_CASE("deep nesting and oversize bodies are handled, not crashes") {
  response_decoder d;
  // Deep nesting in a field the decoder ignores is skipped without recursion.
  std::string deep = R"({"code":200,"x":)";
  for (int i = 0; i < 5000; ++i) deep += '[';
  for (int i = 0; i < 5000; ++i) deep += ']';
  deep += '}';
  CHECK(!d.decode(deep));
  CHECK(d.response().code == 200);
  // Where the decoder looks, nesting of the wrong shape is a typed error.
  std::string nested = R"({"code":200,"data":{"successList":)";
  for (int i = 0; i < 5000; ++i) nested += '[';
  for (int i = 0; i < 5000; ++i) nested += ']';
  nested += "}}";
  CHECK(d.decode(nested) == decode_errc::wrong_type);
  CHECK(d.error_field() == "data.successList[0]");

  response_decoder small(64);
  CHECK(small.decode(std::string(65, ' ')) == decode_errc::too_large);
  CHECK(!small.decode(R"({"code":200})"));
}

TEST_CASE("a padded buffer is parsed in place, and decoding a warm decoder allocates nothing") {
  std::string body;
  body = R"({"code":200,"msg":"ok","data":{"successList":[)";
  for (int i = 0; i < 500; ++i) {
    if (i) body += ',';
    body +=
        fmt::format(R"({{"data":{{"productKey":"p1a2b3","deviceKey":"86{:013}"}},"ticket":"{}"}})",
                    i, 1000000000000000000LL + i);
  }
  body +=
      R"(],"failureList":[{"data":{"productKey":"p","deviceKey":"x"},"msg":"device offline"}]}})";
  const std::size_t size = body.size();
  body.append(response_decoder::padding, ' ');
  const std::string_view view(body.data(), size);

  response_decoder d;
  REQUIRE(!d.decode(view, body.size()));  // warm: parser buffers sized
  test::counting_scope scope;
  REQUIRE(!d.decode(view, body.size()));
  CHECK(scope.allocations() == 0);
  CHECK(d.response().successes.size() == 500);
  CHECK(d.response().successes[499].ticket == "1000000000000000499");
  CHECK(d.response().failures.size() == 1);
}

TEST_CASE("decode errors have their own category") {
  boost::system::error_code ec = decode_errc::trailing_content;
  CHECK(std::string(ec.category().name()) == "fleetcast.decode");
  CHECK(ec.message().find("after") != std::string::npos);
}
