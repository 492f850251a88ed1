// Locating JSON syntax errors.
#include "core/job/json_syntax.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("valid JSON has no syntax error") {
  for (const char* ok : {"{}", "[]", "0", "-1.5e+3", "\"a\\u00e9\\n\"", "true", "null",
                         " {\"a\":[1,{\"b\":null}],\"c\":\"\xC3\xA9\"} ", "\xEF\xBB\xBF{}"}) {
    CAPTURE(ok);
    CHECK(!find_json_syntax_error(ok));
  }
}

TEST_CASE("each kind of mistake is located") {
  struct c {
    const char* text;
    std::uint64_t line, column;
    const char* words;
  } cases[] = {
      {"{\"a\":1,}", 1, 8, "field name"},
      {"{\"a\" 1}", 1, 6, "':'"},
      {"[1 2]", 1, 4, "',' or ']'"},
      {"{\n\"a\": tru\n}", 2, 6, "true"},
      {"{\"a\": 01}", 1, 8, "',' or '}'"},
      {"{\"a\": 1.}", 1, 9, "digits"},
      {"{\"a\": \"x\ny\"}", 1, 9, "control character"},
      {"{\"a\": \"\\q\"}", 1, 9, "escape"},
      {"{\"a\": \"\\u12G4\"}", 1, 9, "\\u"},
      {"{\"a\": \"open", 1, 12, "inside a string"},
      {"{\"a\": [1,2", 1, 11, "missing ']'"},
      {"{} x", 1, 4, "after the JSON value"},
      {"{'a': 1}", 1, 2, "field name"},
      {"", 1, 1, "end of input"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.text);
    auto e = find_json_syntax_error(k.text);
    REQUIRE(e);
    CHECK(e->line == k.line);
    CHECK(e->column == k.column);
    CHECK(e->message.find(k.words) != std::string::npos);
  }
}

TEST_CASE("nesting is bounded and invalid UTF-8 is caught") {
  std::string deep(300, '[');
  deep += std::string(300, ']');
  auto e = find_json_syntax_error(deep);
  REQUIRE(e);
  CHECK(e->message.find("nesting") != std::string::npos);
  CHECK(find_json_syntax_error("{\"a\":\"\xFF\"}"));
}
