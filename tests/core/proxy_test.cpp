// Which proxy serves an endpoint, NO_PROXY by curl's rules, the CONNECT
// request and what a proxy's answer means.
#include "core/job/proxy.hpp"
#include <fleetcast/core/job/job_parser.hpp>

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("proxy URLs: user and password decoded, default port, refusals") {
  proxy_url p;
  CHECK_FALSE(parse_proxy_url("http://fleet:p%40ss@proxy.corp:3128/", p));
  CHECK(p.host == "proxy.corp");
  CHECK(p.port == 3128);
  CHECK(p.user == "fleet");
  CHECK(p.password == "p@ss");
  CHECK(p.display() == "proxy.corp:3128");        // never the credentials
  CHECK_FALSE(parse_proxy_url("proxy.corp", p));  // no scheme: http, port 1080 as curl
  CHECK(p.port == 1080);
  CHECK(p.user.empty());
  CHECK_FALSE(parse_proxy_url("http://[::1]:8080", p));
  CHECK(p.host == "::1");
  CHECK(p.display() == "[::1]:8080");
  CHECK(parse_proxy_url("https://proxy:443", p)->find("not supported") != std::string::npos);
  CHECK(parse_proxy_url("socks5://proxy:1080", p)->find("must be http://") != std::string::npos);
  CHECK(parse_proxy_url("http://proxy:99999", p)->find("port") != std::string::npos);
  CHECK(parse_proxy_url("http://:3128", p)->find("no host") != std::string::npos);
  CHECK(parse_proxy_url("http://proxy:3128/path", p)->find("path") != std::string::npos);
}

TEST_CASE("NO_PROXY by curl's rules") {
  CHECK(no_proxy_matches("*", "anything.example"));
  CHECK(no_proxy_matches("example.com", "example.com"));
  CHECK(no_proxy_matches("example.com", "iot.example.com"));
  CHECK(no_proxy_matches(".example.com", "iot.example.com"));
  CHECK(no_proxy_matches(".example.com", "example.com"));
  CHECK(no_proxy_matches("EXAMPLE.com", "Iot.Example.COM"));
  CHECK_FALSE(no_proxy_matches("example.com", "badexample.com"));
  CHECK_FALSE(no_proxy_matches("example.com", "example.com.evil"));
  CHECK(no_proxy_matches(" localhost , 10.0.0.0/8 ", "10.1.2.3"));
  CHECK_FALSE(no_proxy_matches("10.0.0.0/8", "11.1.2.3"));
  CHECK(no_proxy_matches("192.168.1.7", "192.168.1.7"));
  CHECK_FALSE(no_proxy_matches("1.7", "192.168.1.7"));  // an address is not a domain
  CHECK(no_proxy_matches("[::1]", "::1"));
  CHECK(no_proxy_matches("0.0.0.0/0", "8.8.8.8"));
  CHECK_FALSE(no_proxy_matches("", "example.com"));
  CHECK_FALSE(no_proxy_matches("*.example.com", "iot.example.com"));  // curl has no wildcards
}

TEST_CASE("which proxy: the job's field, else the environment by scheme, NO_PROXY over both") {
  endpoint_config https_ep, http_ep;
  REQUIRE_FALSE(parse_endpoint("https://iot.example.com", https_ep));
  REQUIRE_FALSE(parse_endpoint("http://127.0.0.1:8080", http_ep));
  proxy_environment env;
  env.https_proxy = "http://a:b@secure-proxy:3128";
  env.https_source = "https_proxy";
  env.http_proxy = "http://plain-proxy:8080";
  std::string error;
  auto c = choose_proxy(https_ep, std::nullopt, env, error);
  REQUIRE(c.proxy);
  CHECK(c.proxy->host == "secure-proxy");
  CHECK(c.why == "https_proxy");
  c = choose_proxy(http_ep, std::nullopt, env, error);
  REQUIRE(c.proxy);
  CHECK(c.proxy->host == "plain-proxy");
  c = choose_proxy(https_ep, std::string("http://job-proxy:1"), env, error);
  REQUIRE(c.proxy);
  CHECK(c.proxy->host == "job-proxy");
  CHECK(c.why == "proxy");
  CHECK_FALSE(choose_proxy(https_ep, std::string("direct"), env, error).proxy);
  env.no_proxy = "example.com";
  CHECK_FALSE(choose_proxy(https_ep, std::nullopt, env, error).proxy);
  CHECK_FALSE(choose_proxy(https_ep, std::string("http://job-proxy:1"), env, error).proxy);
  CHECK(error.empty());
  env = {};
  CHECK_FALSE(choose_proxy(https_ep, std::nullopt, env, error).proxy);
  env.https_proxy = "ftp://x:secret@p:1";
  choose_proxy(https_ep, std::nullopt, env, error);
  CHECK(error.starts_with("HTTPS_PROXY: must be http://"));
  CHECK(error.find("secret") == std::string::npos);
}

TEST_CASE("the CONNECT request and the proxy's answer") {
  proxy_url p;
  REQUIRE_FALSE(parse_proxy_url("http://Aladdin:open sesame@proxy:3128", p));
  CHECK(connect_request(p, "iot.example.com", 443) ==
        "CONNECT iot.example.com:443 HTTP/1.1\r\nHost: iot.example.com:443\r\n"
        "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
  proxy_url anonymous;
  REQUIRE_FALSE(parse_proxy_url("http://proxy:3128", anonymous));
  CHECK(connect_request(anonymous, "::1", 8443) ==
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
  CHECK(tunnel_refusal(p, "h:443", 200, "Connection established").empty());
  CHECK(tunnel_refusal(anonymous, "h:443", 407, "Proxy Authentication Required") ==
        "the proxy proxy:3128 refused the tunnel to h:443: HTTP 407 Proxy Authentication "
        "Required: the proxy wants a user and password (http://user:password@host:port)");
  CHECK(tunnel_refusal(p, "h:443", 407, "x").ends_with("refused the user and password"));
  CHECK(tunnel_refusal(p, "h:443", 403, "Forbidden").ends_with("this destination or port"));
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("the job's proxy field") {
  const char* base = R"({"endpoint": "https://iot.example.com", "auth": {"token_file": "t"},
    "command": {"type": 2, "data": "[]"}, "devices": {"file": "d.csv"}, "proxy": )";
  auto r = parse_job(std::string(base) + "\"http://u:p@proxy:3128\"}", "job.json");
  REQUIRE(r.job);
  CHECK(*r.job->proxy == "http://u:p@proxy:3128");
  r = parse_job(std::string(base) + "\"direct\"}", "job.json");
  REQUIRE(r.job);
  r = parse_job(std::string(base) + "\"https://u:secret@proxy\"}", "job.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "proxy");
  CHECK(r.errors[0].describe("job.json").find("secret") == std::string::npos);
  CHECK_FALSE(parse_job(R"({"endpoint": "https://iot.example.com", "auth": {"token_file": "t"},
    "command": {"type": 2, "data": "[]"}, "devices": {"file": "d.csv"}})",
                        "job.json")
                  .job->proxy);
}
