// job_reader: what the job file parser's sections share (job_parser.cpp
// and job_sections.cpp): errors with their field path, typed reads of a
// section's fields with their bounds, paths resolved against the job
// file's folder. Internal to the parser.
#pragma once

#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/job/job_parser.hpp>
#include "core/job/suggest.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast::job_parsing {

namespace dom = simdjson::dom;
namespace fs = std::filesystem;

inline std::string join(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

inline std::string type_name(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return "an integer";
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

class job_reader {
 public:
  job_reader(std::vector<job_error>& errors, fs::path base) : errors_(errors), base_(base) {}

  void error(std::string field, std::string message, std::optional<int> code = std::nullopt) {
    errors_.push_back({std::move(field), std::move(message), code, 0, 0});
  }

  void wrong_type(const std::string& field, dom::element e, std::string_view expected) {
    error(field, fmt::format("must be {}, not {}", expected, type_name(e.type())));
  }

  // The object's fields, checked against `allowed` (unknown and repeated
  // fields are errors). False when `e` is not an object.
  bool fields(dom::element e, const std::string& field,
              std::initializer_list<std::string_view> allowed, dom::object& out) {
    if (e.get_object().get(out) != simdjson::SUCCESS) {
      wrong_type(field.empty() ? "job" : field, e, "an object");
      return false;
    }
    std::vector<std::string_view> seen;
    for (auto [key, value] : out) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        const auto guess = closest_name(key, allowed);
        std::string known;
        for (auto a : allowed) known += fmt::format("{}{}", known.empty() ? "" : ", ", a);
        error(join(field, key), guess.empty()
                                    ? fmt::format("unknown field (known here: {})", known)
                                    : fmt::format("unknown field (did you mean {}?)", guess));
      } else if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        error(join(field, key), "given more than once");
      }
      seen.push_back(key);
    }
    return true;
  }

  template <typename T>
  void integer(dom::object obj, const std::string& parent, std::string_view key, T& out,
               std::int64_t min, std::int64_t max) {
    dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return;
    const auto field = join(parent, key);
    std::int64_t v = 0;
    if (e.get_int64().get(v) != simdjson::SUCCESS) {
      double d = 0;
      if (e.get_double().get(d) == simdjson::SUCCESS && std::floor(d) == d && std::abs(d) < 9e15) {
        v = static_cast<std::int64_t>(d);
      } else {
        return wrong_type(field, e, "an integer");
      }
    }
    if (v < min || v > max) {
      return error(field, fmt::format("{} is outside {}..{}", v, min, max));
    }
    out = static_cast<T>(v);
  }

  template <typename T>
  void integer(dom::object obj, const std::string& parent, std::string_view key, T& out,
               bounds<std::int64_t> b) {
    integer(obj, parent, key, out, b.min, b.max);
  }
  void number(dom::object obj, const std::string& parent, std::string_view key, double& out,
              bounds<double> b) {
    number(obj, parent, key, out, b.min, b.max);
  }

  void number(dom::object obj, const std::string& parent, std::string_view key, double& out,
              double min, double max) {
    dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return;
    const auto field = join(parent, key);
    double v = 0;
    std::int64_t i = 0;
    if (e.get_int64().get(i) == simdjson::SUCCESS) {
      v = static_cast<double>(i);
    } else if (e.get_double().get(v) != simdjson::SUCCESS) {
      return wrong_type(field, e, "a number");
    }
    if (!(v >= min && v <= max))
      return error(field, fmt::format("{} is outside {}..{}", v, min, max));
    out = v;
  }

  bool string(dom::object obj, const std::string& parent, std::string_view key, std::string& out,
              bool allow_empty = false) {
    dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return false;
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      wrong_type(join(parent, key), e, "a string");
      return false;
    }
    if (v.empty() && !allow_empty) {
      error(join(parent, key), "must not be empty");
      return false;
    }
    out = std::string(v);
    return true;
  }

  void boolean(dom::object obj, const std::string& parent, std::string_view key, bool& out) {
    dom::element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return;
    if (e.get_bool().get(out) != simdjson::SUCCESS)
      wrong_type(join(parent, key), e, "true or false");
  }

  std::string path(std::string_view p) const {
    fs::path v(p);
    return (v.is_absolute() ? v : base_ / v).lexically_normal().string();
  }

  std::vector<job_error>& errors_;
  fs::path base_;
};

// The auth and acks sections (job_sections.cpp).
void read_auth(job_reader& r, dom::element e, auth_config& auth);
void read_acks(job_reader& r, dom::element e, acks_config& acks);

}  // namespace fleetcast::job_parsing
