// Response decoding with simdjson On-Demand (see response_decoder.hpp).
#include "core/protocol/response_decoder.hpp"

#include "core/job/json_syntax.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>

namespace fleetcast {

namespace od = simdjson::ondemand;

namespace {

class decode_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fleetcast.decode"; }
  std::string message(int code) const override {
    switch (static_cast<decode_errc>(code)) {
      case decode_errc::not_json:
        return "answer is not valid JSON (or is truncated)";
      case decode_errc::not_an_object:
        return "answer is JSON but not an object";
      case decode_errc::missing_code:
        return "answer has no \"code\"";
      case decode_errc::wrong_type:
        return "answer has a field of the wrong type";
      case decode_errc::too_large:
        return "answer is larger than the configured limit";
      case decode_errc::trailing_content:
        return "answer has content after its JSON document";
    }
    return "decode error " + std::to_string(code);
  }
};

decode_errc classify(simdjson::error_code e) {
  switch (e) {
    case simdjson::INCORRECT_TYPE:
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
      return decode_errc::wrong_type;
    case simdjson::CAPACITY:
      return decode_errc::too_large;
    default:
      return decode_errc::not_json;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Walks one document; each method returns simdjson's error and leaves the
// JSON path of a failure in `where`.
struct walker {
  decoded_response& r;
  std::string& where;

  // Free text (msg, extMsg, ticket): a string, null (empty), or a scalar
  // taken as its JSON text (a ticket sent as a number stays exact).
  simdjson::error_code text(od::value v, std::string_view& out, bool* is_null = nullptr) {
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    switch (type) {
      case od::json_type::string:
        return v.get_string().get(out);
      case od::json_type::null:
        out = {};
        if (is_null) *is_null = true;
        return v.is_null().error();
      case od::json_type::number:
      case od::json_type::boolean: {
        out = trim(v.raw_json_token());
        return simdjson::SUCCESS;
      }
      default:
        return simdjson::INCORRECT_TYPE;
    }
  }

  simdjson::error_code key_string(od::value v, std::string_view& out) {
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    if (type == od::json_type::null) {
      out = {};
      return v.is_null().error();
    }
    return v.get_string().get(out);
  }

  // `path` builds the entry's JSON path; it is called only on failure.
  template <typename Path>
  simdjson::error_code device(od::object obj, pkdk_view& d, const Path& path) {
    for (auto field_result : obj) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return at(e, path());
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return at(e, path());
      std::string_view* target = nullptr;
      if (key == "productKey") {
        target = &d.product_key;
      } else if (key == "deviceKey") {
        target = &d.device_key;
      } else if (key == "gatewayProductKey") {
        target = &d.gateway_product_key;
      } else if (key == "gatewayDeviceKey") {
        target = &d.gateway_device_key;
      }
      if (target) {
        if (auto e = key_string(field.value(), *target)) {
          return at(e, fmt::format("{}.data.{}", path(), key));
        }
      }
    }
    return simdjson::SUCCESS;
  }

  // One entry of successList (is_success) or failureList.
  simdjson::error_code entry(od::value v, bool is_success, std::size_t i) {
    const auto path = [&] {
      return fmt::format("data.{}[{}]", is_success ? "successList" : "failureList", i);
    };
    od::object obj;
    if (auto e = v.get_object().get(obj)) return at(e, path());
    pkdk_view d;
    std::string_view note;
    bool have_device = false;
    for (auto field_result : obj) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return at(e, path());
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return at(e, path());
      od::value value = field.value();
      if (key == "data") {
        od::json_type type;
        if (auto e = value.type().get(type)) return at(e, path() + ".data");
        if (type == od::json_type::null) continue;
        od::object device_obj;
        if (auto e = value.get_object().get(device_obj)) return at(e, path() + ".data");
        if (auto e = device(device_obj, d, path)) return e;
        have_device = true;
      } else if (key == (is_success ? "ticket" : "msg")) {
        if (auto e = text(value, note)) return at(e, fmt::format("{}.{}", path(), key));
      }
    }
    if (!have_device) {
      ++r.entries_without_device;
    } else if (is_success) {
      r.successes.push_back({d, note});
    } else {
      r.failures.push_back({d, note});
    }
    return simdjson::SUCCESS;
  }

  simdjson::error_code list(od::value v, bool is_success) {
    const char* name = is_success ? "data.successList" : "data.failureList";
    od::json_type type;
    if (auto e = v.type().get(type)) return at(e, name);
    if (type == od::json_type::null) return v.is_null().error();
    od::array arr;
    if (auto e = v.get_array().get(arr)) return at(e, name);
    std::size_t i = 0;
    for (auto element : arr) {
      od::value item;
      if (auto e = std::move(element).get(item)) return at(e, fmt::format("{}[{}]", name, i));
      if (auto e = entry(item, is_success, i)) return e;
      ++i;
    }
    return simdjson::SUCCESS;
  }

  simdjson::error_code data(od::object obj) {
    for (auto field_result : obj) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return at(e, "data");
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return at(e, "data");
      if (key == "successList") {
        if (auto e = list(field.value(), true)) return e;
      } else if (key == "failureList") {
        if (auto e = list(field.value(), false)) return e;
      }
    }
    return simdjson::SUCCESS;
  }

  // Records where the first failure happened; a success passes through.
  simdjson::error_code at(simdjson::error_code e, std::string_view path) {
    if (e && where.empty()) where.assign(path);
    return e;
  }
};

}  // namespace

const boost::system::error_category& decode_category() noexcept {
  static const decode_category_impl instance;
  return instance;
}

struct response_decoder::impl {
  od::parser parser;
  explicit impl(std::size_t max) : parser(max) {}
};

const std::size_t response_decoder::padding = simdjson::SIMDJSON_PADDING;

response_decoder::response_decoder(std::size_t max_body)
    : impl_(std::make_unique<impl>(max_body)), max_body_(max_body) {}
response_decoder::~response_decoder() = default;
response_decoder::response_decoder(response_decoder&&) noexcept = default;
response_decoder& response_decoder::operator=(response_decoder&&) noexcept = default;

boost::system::error_code response_decoder::decode(std::string_view body, std::size_t readable) {
  response_.code = 0;
  response_.msg = {};
  response_.ext_msg.reset();
  response_.successes.clear();
  response_.failures.clear();
  response_.entries_without_device = 0;
  error_field_.clear();

  if (body.size() > max_body_) return decode_errc::too_large;
  const char* buf = body.data();
  if (readable < body.size() + simdjson::SIMDJSON_PADDING) {
    padded_.resize(body.size() + simdjson::SIMDJSON_PADDING);
    if (!body.empty()) std::memcpy(padded_.data(), body.data(), body.size());
    buf = padded_.data();
    readable = padded_.size();
  }

  walker w{response_, error_field_};
  od::document doc;
  if (auto e = impl_->parser.iterate(buf, body.size(), readable).get(doc)) return classify(e);
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e != simdjson::INCORRECT_TYPE) return classify(e);
    // Valid JSON of another kind, or not JSON at all (an HTML error page)?
    return find_json_syntax_error(body) ? decode_errc::not_json : decode_errc::not_an_object;
  }
  bool have_code = false;
  bool data_of_wrong_type = false;
  for (auto field_result : root) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return classify(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return classify(e);
    od::value value = field.value();
    simdjson::error_code e = simdjson::SUCCESS;
    if (key == "code") {
      e = w.at(value.get_int64().get(response_.code), "code");
      have_code = true;
    } else if (key == "msg") {
      e = w.at(w.text(value, response_.msg), "msg");
    } else if (key == "extMsg") {
      std::string_view ext;
      bool is_null = false;
      e = w.at(w.text(value, ext, &is_null), "extMsg");
      if (!e && !is_null) response_.ext_msg = ext;
    } else if (key == "data") {
      od::json_type type;
      e = w.at(value.type().get(type), "data");
      if (!e && type == od::json_type::object) {
        od::object obj;
        e = w.at(value.get_object().get(obj), "data");
        if (!e) e = w.data(obj);
      } else if (!e && type != od::json_type::null) {
        data_of_wrong_type = true;  // only an error when the code says success
      }
    }
    if (e) return classify(e);
  }
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS)
    return decode_errc::trailing_content;
  if (!have_code) return decode_errc::missing_code;
  if (data_of_wrong_type && response_.ok()) {
    error_field_ = "data";
    return decode_errc::wrong_type;
  }
  return {};
}

}  // namespace fleetcast
