// config_reader: reads the fields of a small JSON config (the emulator's,
// the daemon's) into typed values, collecting one message per problem that
// names the field ("faults.reset_ratio: must be in 0..1"). Unknown fields are
// errors. Internal to fleetcast::core.
#pragma once

#include "core/job/json_syntax.hpp"
#include "core/job/suggest.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast::detail {

namespace dom = simdjson::dom;

// Parses a config's text into `root` (kept alive by `parser` and `padded`);
// on a syntax error adds "LINE:COLUMN: invalid JSON: why" and returns false.
inline bool parse_config_root(std::string_view text, dom::parser& parser,
                              simdjson::padded_string& padded, dom::element& root,
                              std::vector<std::string>& errors) {
  padded = simdjson::padded_string(text);
  if (parser.parse(padded).get(root) == simdjson::SUCCESS) return true;
  const auto syntax = find_json_syntax_error(text);
  errors.push_back(
      syntax ? fmt::format("{}:{}: invalid JSON: {}", syntax->line, syntax->column, syntax->message)
             : "invalid JSON");
  return false;
}

class config_reader {
 public:
  config_reader(std::vector<std::string>& errors, std::filesystem::path base)
      : errors_(errors), base_(std::move(base)) {}

  bool object(dom::element e, std::string_view field,
              std::initializer_list<std::string_view> allowed, dom::object& out) {
    if (e.get_object().get(out) != simdjson::SUCCESS) {
      errors_.push_back(fmt::format("{}: must be an object", field));
      return false;
    }
    for (auto [key, value] : out) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        const auto guess = closest_name(key, allowed);
        errors_.push_back(
            fmt::format("{}{}{}: unknown field{}", field, field.empty() ? "" : ".", key,
                        guess.empty() ? "" : fmt::format(" (did you mean {}?)", guess)));
      }
    }
    return true;
  }

  void ratio(dom::object o, std::string_view parent, std::string_view key, double& out) {
    number(o, parent, key, out, 0, 1);
  }

  void number(dom::object o, std::string_view parent, std::string_view key, double& out, double min,
              double max) {
    dom::element e;
    if (o[key].get(e) != simdjson::SUCCESS) return;
    double v;
    std::int64_t i;
    if (e.get_int64().get(i) == simdjson::SUCCESS) {
      v = static_cast<double>(i);
    } else if (e.get_double().get(v) != simdjson::SUCCESS) {
      return fail(parent, key, "must be a number");
    }
    if (!(v >= min && v <= max))
      return fail(parent, key, fmt::format("must be in {}..{}", min, max));
    out = v;
  }

  template <typename T>
  void integer(dom::object o, std::string_view parent, std::string_view key, T& out,
               std::uint64_t min, std::uint64_t max) {
    dom::element e;
    if (o[key].get(e) != simdjson::SUCCESS) return;
    std::uint64_t v;
    if (e.get_uint64().get(v) != simdjson::SUCCESS) {
      return fail(parent, key, "must be a non-negative integer");
    }
    if (v < min || v > max) return fail(parent, key, fmt::format("must be in {}..{}", min, max));
    out = static_cast<T>(v);
  }

  bool string(dom::object o, std::string_view parent, std::string_view key, std::string& out) {
    dom::element e;
    if (o[key].get(e) != simdjson::SUCCESS || e.is_null()) return false;
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      fail(parent, key, "must be a string");
      return false;
    }
    out = std::string(v);
    return true;
  }

  void strings(dom::object o, std::string_view key, std::vector<std::string>& out) {
    dom::element e;
    if (o[key].get(e) != simdjson::SUCCESS) return;
    dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS)
      return fail("", key, "must be an array of strings");
    out.clear();
    for (dom::element s : a) {
      std::string_view v;
      if (s.get_string().get(v) != simdjson::SUCCESS) {
        return fail("", key, "must be an array of strings");
      }
      out.emplace_back(v);
    }
  }

  void fail(std::string_view parent, std::string_view key, std::string_view what) {
    errors_.push_back(fmt::format("{}{}{}: {}", parent, parent.empty() ? "" : ".", key, what));
  }

  std::string path(const std::string& p) const {
    std::filesystem::path v(p);
    return (v.is_absolute() ? v : base_ / v).lexically_normal().string();
  }

 private:
  std::vector<std::string>& errors_;
  std::filesystem::path base_;
};

}  // namespace fleetcast::detail
