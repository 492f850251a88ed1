// Where a field is in a JSON text; "did you mean".
#include "core/job/json_locate.hpp"
#include "core/job/suggest.hpp"

#include <doctest/doctest.h>

using namespace fleetcast;

TEST_CASE("a field's key is found by its path, nested, past arrays and escapes") {
  const char* text = R"({"a": [1, {"b": 2}, "x\"y"],
  "b": {"c": {"d": true}, "s": "{\"d\": 1}"},
    "e": null}
)";
  auto at = locate_json_field(text, "b.c.d");
  REQUIRE(at);
  CHECK(at->line == 2);
  CHECK(at->column == 15);
  at = locate_json_field(text, "e");
  REQUIRE(at);
  CHECK(at->line == 3);
  CHECK(at->column == 5);
  // "b" inside a's array is not the top-level b.
  at = locate_json_field(text, "b");
  REQUIRE(at);
  CHECK(at->line == 2);
  // A missing field: its deepest ancestor that is there.
  at = locate_json_field(text, "b.c.missing");
  REQUIRE(at);
  CHECK(at->line == 2);
  CHECK(at->column == 9);
  CHECK_FALSE(locate_json_field(text, "nothing"));
  CHECK_FALSE(locate_json_field(text, ""));
  CHECK_FALSE(locate_json_field("[1, 2]", "a"));
}

TEST_CASE("did you mean: the closest name within a typo's distance") {
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("conections", "connections") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
  const std::vector<std::string_view> names{"connections", "pipeline_depth", "rate", "retry"};
  CHECK(closest_name("conections", names) == "connections");
  CHECK(closest_name("rety", names) == "retry");
  CHECK(closest_name("timeouts", names).empty());
  CHECK(closest_name("x", names).empty());
}
