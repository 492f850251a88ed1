// The refresh endpoint's request and answer, a JWT's exp, and when to refresh.
#include "core/protocol/token_refresh.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("the refresh request carries the refresh token URL-encoded") {
  CHECK(refresh_target("", "abc-_.~") ==
        "/v2/enduser/enduserapi/refreshToken?refreshToken=abc-_.~");
  CHECK(refresh_target("/p", "a+b/c=d e") ==
        "/p/v2/enduser/enduserapi/refreshToken?refreshToken=a%2Bb%2Fc%3Dd%20e");
}

TEST_CASE("the refresh answer: both tokens and their expiry, or why not") {
  const auto a = read_refresh_answer(
      200,
      R"({"code":200,"msg":"","data":{"accessToken":{"token":"Bearer new","expirationTime":1700007200},)"
      R"("refreshToken":{"token":"r2","expirationTime":1702592000}}})");
  CHECK(a.error.empty());
  CHECK(a.access_token == "Bearer new");
  CHECK(a.refresh_token == "r2");
  CHECK(a.access_expires_s == 1700007200);
  CHECK(a.refresh_expires_s == 1702592000);
  const auto expired =
      read_refresh_answer(200, R"({"code":5032,"msg":"token expired","data":null})");
  CHECK(expired.code == 5032);
  CHECK(expired.error.find("refresh token has expired") != std::string::npos);
  CHECK(read_refresh_answer(502, "<html>").error == "HTTP 502");
  CHECK(!read_refresh_answer(200, "nope").error.empty());
  CHECK(read_refresh_answer(200, R"({"code":200,"data":{}})").error.find("accessToken") !=
        std::string::npos);
}

TEST_CASE("a JWT exp with or without Bearer, and anything else has none") {
  // {"alg":"HS256"} . {"sub":"u","exp":1700000000} . signature
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
  CHECK(jwt_expiry_s(jwt) == 1700000000);
  CHECK(jwt_expiry_s("Bearer " + jwt) == 1700000000);
  CHECK(!jwt_expiry_s("Bearer opaque-token"));
  CHECK(!jwt_expiry_s("a.b.c"));
}

TEST_CASE("refresh a quarter of the life before the end, at most 5 minutes before") {
  CHECK(refresh_due_s(0, 7200) == 6900);  // 2 hours: 5 minutes before
  CHECK(refresh_due_s(100, 104) == 103);  // 4 s: 1 s before
  CHECK(refresh_due_s(100, 100) == 100);
}
