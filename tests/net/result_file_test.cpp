// result.json built as the run goes is, byte for byte, the one rebuilt from
// results.ndjson afterwards (core's merged_result_of), through buffer drains
// and failures copied at the end; a result_file that never finishes leaves
// no file behind.
#include "net/session/result_file.hpp"
#include "core/output/result_log.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace fleetcast;
namespace fs = std::filesystem;

namespace {

struct scratch {
  fs::path dir = fs::temp_directory_path() / fmt::format("fleetcast-result-file-{}", ::getpid());
  scratch() { fs::create_directories(dir); }
  ~scratch() { fs::remove_all(dir); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("result.json as the run goes equals result.json rebuilt from results.ndjson") {
  scratch s;
  // 40,000 results (several MiB: the buffers drain many times), every
  // reason, keys that need escaping, failures all through.
  std::vector<std::string> keys, tickets;
  for (int i = 0; i < 40'000; ++i) {
    keys.push_back(i % 997 == 0 ? fmt::format("k\"{}\\\n", i) : fmt::format("86{:013}", i));
    tickets.push_back(fmt::format("17000000000{:08}", i));
  }
  std::string lines;
  {
    net::result_file file(s.dir);
    for (int i = 0; i < 40'000; ++i) {
      device_result r;
      r.index = static_cast<std::uint64_t>(i);
      r.device = {"p1", keys[i], i % 5 == 0 ? "gw" : "", i % 5 == 0 ? "g1" : ""};
      r.reason = static_cast<outcome_reason>(i % 13 < 10 ? 0 : i % outcome_reason_count);
      if (r.reason == outcome_reason::accepted)
        r.ticket = tickets[i];
      else
        r.msg = "device offline";
      append_result_line(lines, r);
      file.add(r);
    }
    REQUIRE(file.finish() == "");
  }
  std::istringstream ndjson(lines);
  std::string want;
  REQUIRE(merged_result_of(ndjson, want) == "");
  const auto got = slurp(s.dir / "result.json");
  CHECK(got.size() == want.size());
  CHECK(got == want);
  CHECK_FALSE(fs::exists(s.dir / "result.json.tmp"));
  CHECK_FALSE(fs::exists(s.dir / ".failures.part"));
}

TEST_CASE("a result_file that does not finish (a refused resume, a crash) leaves nothing") {
  scratch s;
  {
    net::result_file file(s.dir);
    device_result r;
    r.device = {"p1", "d1", "", ""};
    r.ticket = "1";
    file.add(r);
    CHECK(fs::exists(s.dir / "result.json.tmp"));
  }
  CHECK(fs::is_empty(s.dir));
}

TEST_CASE("a folder that cannot be written: the error names result.json, nothing is thrown") {
  scratch s;
  net::result_file file(s.dir / "missing" / "deeper");
  device_result r;
  r.device = {"p1", "d1", "", ""};
  file.add(r);
  CHECK(file.error().find("result.json") != std::string::npos);
  CHECK(file.finish().find("result.json") != std::string::npos);
}
