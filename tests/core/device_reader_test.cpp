// Device lists: CSV, NDJSON, JSON arrays and inline arrays; bad records keep
// their place; duplicates are caught; memory stays bounded.
#include <fleetcast/core/input/device_stream.hpp>
#include <fleetcast/core/input/fingerprint_set.hpp>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

using namespace fleetcast;

namespace {

struct read_record {
  std::uint64_t index;
  std::uint64_t line;
  std::string pk, dk, gpk, gdk;
  std::string problem;
  record_kind kind;
};

struct read_all_result {
  std::vector<read_record> records;
  std::string fatal;
};

read_all_result read_all(device_format format, const std::string& text, bool inline_array = false,
                         device_reader_config config = {}) {
  std::istringstream in(text);
  device_stream stream(make_device_reader(format, in, config, inline_array));
  read_all_result out;
  device_record r;
  record_kind kind;
  while (stream.next(r, kind)) {
    out.records.push_back({r.index, r.line, std::string(r.device.product_key),
                           std::string(r.device.device_key),
                           std::string(r.device.gateway_product_key),
                           std::string(r.device.gateway_device_key), r.problem, kind});
  }
  out.fatal = stream.fatal_error();
  return out;
}

void check_indices(const read_all_result& r) {
  for (std::size_t i = 0; i < r.records.size(); ++i) CHECK(r.records[i].index == i);
}

}  // namespace

TEST_CASE("format from the file extension") {
  CHECK(format_from_path("a/b/devices.csv") == device_format::csv);
  CHECK(format_from_path("d.CSV") == device_format::csv);
  CHECK(format_from_path("d.ndjson") == device_format::ndjson);
  CHECK(format_from_path("d.jsonl") == device_format::ndjson);
  CHECK(format_from_path("d.json") == device_format::json_array);
  CHECK(!format_from_path("d.txt"));
  CHECK(!format_from_path("csv"));
}

TEST_CASE("CSV: header in any order, quoted fields, CRLF, BOM, blank lines, gateways") {
  const std::string text =
      "\xEF\xBB\xBF"
      "deviceKey,productKey,gatewayProductKey,gatewayDeviceKey\r\n"
      "d1,p1,,\r\n"
      "\r\n"
      "\"d,2\",\"p\"\"2\",gp,gd\r\n"
      "  d3 , p3 ,,\n"
      "d4,p4,\"\",\"\"";  // no final newline
  auto r = read_all(device_format::csv, text);
  CHECK(r.fatal.empty());
  REQUIRE(r.records.size() == 4);
  check_indices(r);
  CHECK(r.records[0].pk == "p1");
  CHECK(r.records[0].dk == "d1");
  CHECK(r.records[0].line == 2);
  CHECK(r.records[0].kind == record_kind::device);
  CHECK(r.records[1].dk == "d,2");
  CHECK(r.records[1].pk == "p\"2");
  CHECK(r.records[1].gpk == "gp");
  CHECK(r.records[1].gdk == "gd");
  CHECK(r.records[1].line == 4);
  CHECK(r.records[2].dk == "d3");
  CHECK(r.records[2].pk == "p3");
  CHECK(r.records[3].dk == "d4");
  CHECK(r.records[3].kind == record_kind::device);
}

TEST_CASE("CSV: bad lines are skipped with their line number and keep their place") {
  const std::string text =
      "productKey,deviceKey\n"
      "p,d0\n"
      "p\n"           // too few fields
      "p,d2,extra\n"  // too many
      ",d3\n"         // empty productKey
      "p,\"d4\n"      // unterminated quote
      "p,\"d5\"x\n"   // junk after a quoted field
      "p,d0\n"        // duplicate of line 2
      "p,d\xFF\n"     // not UTF-8
      "p,d8\n";
  auto r = read_all(device_format::csv, text);
  CHECK(r.fatal.empty());
  REQUIRE(r.records.size() == 9);
  check_indices(r);
  CHECK(r.records[0].kind == record_kind::device);
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {1, "line 3: 1 field, but the header has 2 columns"},
      {2, "line 4: 3 fields, but the header has 2 columns"},
      {3, "line 5: productKey is empty"},
      {4, "line 6: unterminated quoted field"},
      {5, "line 7: unexpected character after a quoted field"},
      {7, "line 9: deviceKey is not valid UTF-8"},
  };
  for (const auto& [i, words] : expected) {
    CAPTURE(i);
    CHECK(r.records[i].kind == record_kind::invalid);
    CHECK(r.records[i].problem.find(words) == 0);
  }
  CHECK(r.records[6].kind == record_kind::duplicate);
  CHECK(r.records[6].problem.starts_with("line 8: duplicate"));
  CHECK(r.records[8].kind == record_kind::device);
  CHECK(r.records[8].dk == "d8");
  // A skip result for a non-UTF-8 key leaves the key out of JSON output.
  device_record rec;
  rec.device = {"p", "d\xFF", "", ""};
  rec.problem = "x";
  CHECK(skip_result(rec, record_kind::invalid).device.device_key.empty());
  CHECK(skip_result(rec, record_kind::invalid).reason == outcome_reason::invalid_record);
}

TEST_CASE("CSV: a bad header stops reading with a clear message") {
  CHECK(read_all(device_format::csv, "").fatal.find("empty") != std::string::npos);
  CHECK(read_all(device_format::csv, "\n\n").fatal.find("empty") != std::string::npos);
  auto r = read_all(device_format::csv, "p1,d1\np2,d2\n");
  CHECK(r.records.empty());
  CHECK(r.fatal.find("line 1: unknown column \"p1\"") == 0);
  CHECK(read_all(device_format::csv, "productKey,devicekey\n").fatal.find("\"devicekey\"") !=
        std::string::npos);
  CHECK(read_all(device_format::csv, "productKey\n").fatal.find("no \"deviceKey\" column") !=
        std::string::npos);
  CHECK(read_all(device_format::csv, "productKey,deviceKey,productKey\n").fatal.find("twice") !=
        std::string::npos);
  CHECK(read_all(device_format::csv, "productKey,deviceKey,gatewayDeviceKey\n")
            .fatal.find("go together") != std::string::npos);
}

TEST_CASE("very long lines are bad records, not buffered, and reading goes on") {
  device_reader_config config;
  config.max_line_bytes = 100;
  for (std::size_t length : {101u, 5000u, 1u << 20}) {
    CAPTURE(length);
    const std::string text =
        "productKey,deviceKey\np,d0\np," + std::string(length, 'x') + "\np,d2\n";
    auto r = read_all(device_format::csv, text, false, config);
    REQUIRE(r.records.size() == 3);
    CHECK(r.records[1].kind == record_kind::invalid);
    CHECK(r.records[1].problem == "line 3: longer than 100 bytes");
    CHECK(r.records[2].dk == "d2");
    CHECK(r.records[2].line == 4);

    const std::string nd = "{\"productKey\":\"p\",\"deviceKey\":\"" + std::string(length, 'y') +
                           "\"}\n{\"productKey\":\"p\",\"deviceKey\":\"d\"}\n";
    auto n = read_all(device_format::ndjson, nd, false, config);
    REQUIRE(n.records.size() == 2);
    CHECK(n.records[0].problem == "line 1: longer than 100 bytes");
    CHECK(n.records[1].kind == record_kind::device);
  }
}

TEST_CASE("NDJSON: one object a line, bad lines keep their place") {
  const std::string text =
      "{\"productKey\":\"p\",\"deviceKey\":\"d0\"}\n"
      "\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d1\",\"gatewayProductKey\":\"g\",\"gatewayDeviceKey\":"
      "\"h\"}\r\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d2\",\"gatewayProductKey\":null,\"gatewayDeviceKey\":"
      "null}\n"
      "{\"productKey\":\"p\",\"deviceKey\":7}\n"
      "{\"productKey\":\"p\"}\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d5\",\"devicekey\":\"x\"}\n"
      "[1]\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d7\"} trailing\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d8\"\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"d0\"}\n"
      "{\"productKey\":\"p\",\"deviceKey\":\"\\u00e9\\\"\"}\n";
  auto r = read_all(device_format::ndjson, text);
  CHECK(r.fatal.empty());
  REQUIRE(r.records.size() == 11);
  check_indices(r);
  CHECK(r.records[0].kind == record_kind::device);
  CHECK(r.records[1].gdk == "h");
  CHECK(r.records[1].line == 3);
  CHECK(r.records[2].kind == record_kind::device);
  CHECK(r.records[2].gpk.empty());
  CHECK(r.records[3].problem == "line 5: field \"deviceKey\" must be a string");
  CHECK(r.records[4].problem == "line 6: missing field \"deviceKey\"");
  CHECK(r.records[5].problem.starts_with("line 7: unknown field \"devicekey\""));
  CHECK(r.records[6].problem == "line 8: not a JSON object");
  CHECK(r.records[7].problem.starts_with("line 9: "));
  CHECK(r.records[7].kind == record_kind::invalid);
  CHECK(r.records[8].kind == record_kind::invalid);
  CHECK(r.records[9].kind == record_kind::duplicate);
  CHECK(r.records[10].dk == "\xC3\xA9\"");
}

TEST_CASE("JSON array: streamed element by element, strings with brackets, bad elements") {
  const std::string text =
      "\xEF\xBB\xBF [\n"
      "  {\"productKey\": \"p\", \"deviceKey\": \"d0]\"},\n"
      "  {\"productKey\": \"p\", \"deviceKey\": \"d1,{\\\"\"},\n"
      "  {\"productKey\": \"p\", \"deviceKey\": 1},\n"
      "  \"text\",\n"
      "  {\"productKey\": \"p\", \"deviceKey\": \"d4\", \"nested\": [{\"a\": [1]}]},\n"
      "  {\"productKey\": \"p\",\n   \"deviceKey\": \"d5\"}\n"
      "]\n";
  auto r = read_all(device_format::json_array, text);
  CHECK(r.fatal.empty());
  REQUIRE(r.records.size() == 6);
  check_indices(r);
  CHECK(r.records[0].dk == "d0]");
  CHECK(r.records[0].line == 2);
  CHECK(r.records[1].dk == "d1,{\"");
  CHECK(r.records[2].problem == "line 4: field \"deviceKey\" must be a string");
  CHECK(r.records[3].problem == "line 5: not a JSON object");
  CHECK(r.records[4].problem.starts_with("line 6: unknown field \"nested\""));
  CHECK(r.records[5].dk == "d5");
  CHECK(r.records[5].line == 7);
}

TEST_CASE("JSON array: structure errors keep what was read before them") {
  auto empty = read_all(device_format::json_array, " [ ] ");
  CHECK(empty.records.empty());
  CHECK(empty.fatal.empty());
  CHECK(read_all(device_format::json_array, "").fatal.find("empty") != std::string::npos);
  CHECK(read_all(device_format::json_array, "{\"a\":1}").fatal.find("expected '['") !=
        std::string::npos);
  auto open = read_all(device_format::json_array,
                       "[{\"productKey\":\"p\",\"deviceKey\":\"a\"},\n{\"productKey\":\"p\"");
  REQUIRE(open.records.size() == 1);
  CHECK(open.records[0].kind == record_kind::device);
  CHECK(open.fatal.find("missing ']'") != std::string::npos);
  auto after =
      read_all(device_format::json_array, "[{\"productKey\":\"p\",\"deviceKey\":\"a\"}]\n[]");
  REQUIRE(after.records.size() == 1);
  CHECK(after.fatal.find("line 2: content after the end of the array") == 0);
  auto stray = read_all(device_format::json_array, "[{\"productKey\":\"p\",\"deviceKey\":\"a\"},]");
  REQUIRE(stray.records.size() == 2);
  CHECK(stray.records[1].problem.find("empty element") != std::string::npos);
}

TEST_CASE("inline arrays name records by position") {
  auto r = read_all(
      device_format::json_array,
      R"([{"productKey":"p","deviceKey":"a"},{"productKey":"p"},{"productKey":"p","deviceKey":"a"},{"productKey":"","deviceKey":"b"}])",
      true);
  REQUIRE(r.records.size() == 4);
  CHECK(r.records[0].line == 0);
  CHECK(r.records[1].problem == "devices[1]: missing field \"deviceKey\"");
  CHECK(r.records[2].problem.starts_with("devices[2]: duplicate"));
  CHECK(r.records[3].problem == "devices[3]: productKey is empty");
}

namespace {
// A stream of `count` generated CSV device lines, made on the fly so that
// the test itself holds no large buffer.
class generated_csv : public std::streambuf {
 public:
  explicit generated_csv(std::size_t count) : count_(count) {
    line_ = "productKey,deviceKey\n";
    setg(line_.data(), line_.data(), line_.data() + line_.size());
  }

 protected:
  int_type underflow() override {
    if (next_ >= count_) return traits_type::eof();
    line_ = fmt::format("p{},86{:013}\n", next_ % 7, next_ * 2654435761u % 10000000000000u);
    ++next_;
    setg(line_.data(), line_.data(), line_.data() + line_.size());
    return traits_type::to_int_type(line_[0]);
  }

 private:
  std::size_t count_;
  std::size_t next_ = 0;
  std::string line_;
};
}  // namespace

TEST_CASE("a large list streams with every record once and a duplicate filter of bounded size") {
  constexpr std::size_t n = 300'000;
  generated_csv source(n);
  std::istream in(&source);
  device_stream stream(make_device_reader(device_format::csv, in));
  device_record r;
  record_kind kind;
  std::size_t devices = 0, index_sum_ok = 0;
  while (stream.next(r, kind)) {
    index_sum_ok += r.index == devices;
    devices += kind == record_kind::device;
  }
  CHECK(stream.fatal_error().empty());
  CHECK(devices == n);
  CHECK(index_sum_ok == n);
  // At most 16 bytes of filter per device (8-byte slots, load 0.57 .. 0.85).
  CHECK(stream.memory_bytes() <= n * 16);
}

TEST_CASE("fingerprint_set finds every repeat and nothing else") {
  fingerprint_set s;
  for (std::uint64_t i = 1; i <= 100000; ++i) CHECK(s.insert(i * 0x9E3779B97F4A7C15ULL));
  for (std::uint64_t i = 1; i <= 100000; i += 7) CHECK(!s.insert(i * 0x9E3779B97F4A7C15ULL));
  CHECK(s.size() == 100000);
  CHECK(s.insert(0));  // zero (the empty-slot mark) is a value like any other
  CHECK(!s.insert(0));
  CHECK(s.insert(1));
  CHECK(s.size() == 100002);
}

TEST_CASE("fingerprint_set sized beforehand: the same answers, beyond the size too") {
  constexpr std::uint64_t n = 200'000;
  fingerprint_set s;
  s.reserve(n);
  const auto reserved = s.memory_bytes();
  CHECK(reserved >= n * 8);
  CHECK(reserved <= n * 12);  // 75% load at the expected count
  const auto f = [](std::uint64_t i) { return i * 0x9E3779B97F4A7C15ULL; };
  bool all_new = true, all_repeats = true;
  for (std::uint64_t i = 1; i <= n; ++i) all_new &= s.insert(f(i));
  CHECK(all_new);
  CHECK(s.memory_bytes() == reserved);  // nothing grew
  // Three times as many: partitions grow out of the reserved region.
  for (std::uint64_t i = n + 1; i <= 3 * n; ++i) all_new &= s.insert(f(i));
  CHECK(all_new);
  CHECK(s.memory_bytes() > reserved);
  for (std::uint64_t i = 1; i <= 3 * n; ++i) all_repeats &= !s.insert(f(i));
  CHECK(all_repeats);
  CHECK(s.size() == 3 * n);
  CHECK(s.insert(0));
  CHECK(!s.insert(0));
}

TEST_CASE("fingerprint_set: reserve after the first insert changes nothing") {
  fingerprint_set s;
  CHECK(s.insert(42));
  const auto before = s.memory_bytes();
  s.reserve(10'000'000);
  CHECK(s.memory_bytes() == before);
  CHECK(!s.insert(42));
  CHECK(s.insert(43));
}

TEST_CASE("estimate_records: from the first bytes and the total size") {
  std::string csv = "productKey,deviceKey\n";
  for (int i = 0; i < 1000; ++i) csv += fmt::format("p1a2b3c4,86{:013}\n", i);
  // The whole file as its own sample: its line count (the header included).
  CHECK(estimate_records(csv, csv.size(), device_format::csv) == 1001);
  // The first 4 KiB of a file 1000 times as large.
  const auto big = estimate_records(std::string_view(csv).substr(0, 4096), csv.size() * 1000,
                                    device_format::csv);
  CHECK(big > 990'000);
  CHECK(big < 1'010'000);
  std::string array = "[\n";
  for (int i = 0; i < 100; ++i)
    array += fmt::format("  {{\n    \"productKey\": \"p\",\n    \"deviceKey\": \"{}\"\n  }},\n", i);
  CHECK(estimate_records(array, array.size(), device_format::json_array) == 100);
  CHECK(estimate_records("productKey,deviceKey\np,1\n", 1'000'000, device_format::csv) == 0);
  CHECK(estimate_records("", 1'000'000, device_format::ndjson) == 0);
}

namespace {

// A stream of NUL bytes, as /dev/zero or a sparse file gives, that counts
// what was read from it (it ends after 256 MiB, so that a reader that does
// not stop at the first NUL fails this test instead of hanging it).
struct zeros final : std::streambuf {
  char buf[4096] = {};
  std::uint64_t served = 0;
  int_type underflow() override {
    if (served >= (256u << 20)) return traits_type::eof();
    setg(buf, buf, buf + sizeof buf);
    served += sizeof buf;
    return 0;
  }
};

}  // namespace

TEST_CASE("a NUL byte ends the list at once with its offset, in every format") {
  const std::string csv =
      std::string("productKey,deviceKey\npk1,dk1\npk1,dk") + '\0' + "2\npk1,dk3\n";
  auto c = read_all(device_format::csv, csv);
  CHECK(c.records.empty());  // the chunk that holds it is not taken either
  CHECK(c.fatal.find("byte 35 is a NUL") != std::string::npos);
  const std::string nd = std::string("{\"productKey\":\"pk1\",\"deviceKey\":\"dk1\"}\n") + '\0';
  auto n = read_all(device_format::ndjson, nd);
  CHECK(n.records.size() == 0);  // the NUL is in the first chunk read
  CHECK(n.fatal.find("is a NUL") != std::string::npos);
  auto j = read_all(device_format::json_array, std::string("[{\"productKey\":\"pk1\",") + '\0');
  CHECK(j.fatal.find("byte 21 is a NUL") != std::string::npos);
  for (auto format : {device_format::csv, device_format::ndjson, device_format::json_array}) {
    zeros z;
    std::istream in(&z);
    device_stream stream(make_device_reader(format, in, {}, false));
    device_record r;
    record_kind kind;
    CHECK_FALSE(stream.next(r, kind));
    CHECK(stream.fatal_error().find("byte 0 is a NUL") != std::string::npos);
    CHECK(z.served <= 4 * 1024 * 1024);  // one buffer's worth, not the endless rest
  }
}
