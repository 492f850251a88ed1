// Operator requests through the output folder: written and read back,
// refused with a reason when they are not requests.
#include "core/output/operator_act.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace fleetcast;

TEST_CASE("a request reads back as written, its outcome names it, who and when") {
  act_request r;
  r.id = "2026-12-04T10-00-00Z-42-abc";
  r.act = operator_act::resume;
  r.by = "alice \"ops\"";
  r.at = "2026-12-04T10:00:00Z";
  const auto text = to_json(r);
  CHECK(text.ends_with("}\n"));
  std::string error;
  const auto back = parse_act_request(text, error);
  REQUIRE(back);
  CHECK(back->id == r.id);
  CHECK(back->act == operator_act::resume);
  CHECK(back->by == r.by);
  CHECK(back->at == r.at);
  CHECK(outcome_line(r, {true, "continued after 3 s paused"}, "2026-12-04T10:00:01Z") ==
        R"({"id":"2026-12-04T10-00-00Z-42-abc","act":"continue","by":"alice \"ops\"",)"
        R"("asked_at":"2026-12-04T10:00:00Z","at":"2026-12-04T10:00:01Z","applied":true,)"
        R"("result":"continued after 3 s paused"})"
        "\n");
  CHECK(parse_operator_act("continue") == operator_act::resume);
  CHECK(!parse_operator_act("resume"));
}

TEST_CASE("what is not a request is refused, saying why") {
  std::string error;
  CHECK(!parse_act_request("not json", error));
  CHECK(error == "not JSON");
  CHECK(!parse_act_request(R"({"id":"x","act":"approve","by":"b"})", error));
  CHECK(error == "needs the strings id, act, by and at");
  CHECK(!parse_act_request(R"({"id":"x","act":"delete","by":"b","at":"t"})", error));
  CHECK(error == "act \"delete\" is not approve, pause or continue");
  CHECK(!parse_act_request(std::string(5000, ' '), error));
  CHECK(error == "a request is at most 4096 bytes");
  // Long fields are cut, not refused: the record stays a line.
  const auto long_by = parse_act_request(
      R"({"id":"x","act":"pause","by":")" + std::string(1000, 'b') + R"(","at":"t"})", error);
  REQUIRE(long_by);
  CHECK(long_by->by.size() == 256);
}
