// Reading one subscription message (see subscription_message.hpp).
#include "core/acks/subscription_message.hpp"

#include <simdjson.h>

#include <charconv>

namespace fleetcast {

namespace {

namespace dom = simdjson::dom;

// A field that is a string of digits or a number, as ms.
bool read_ms(dom::element e, std::int64_t& out) {
  if (e.get_int64().get(out) == simdjson::SUCCESS) return true;
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS || s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

subscription_message malformed(std::string why) {
  subscription_message m;
  m.what = subscription_message::kind::malformed;
  m.error = std::move(why);
  return m;
}

}  // namespace

subscription_message read_subscription_message(std::string_view body) {
  // A message at a time, at the platform's pace: a parser per call is fine.
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(body);
  if (auto e = parser.parse(padded).get(root); e != simdjson::SUCCESS)
    return malformed(std::string("not JSON: ") + simdjson::error_message(e));
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return malformed("not a JSON object");
  std::string_view type;
  if (obj["type"].get_string().get(type) != simdjson::SUCCESS)
    return malformed("no \"type\" string");
  subscription_message m;
  if (type != "REQACK") {
    m.what = subscription_message::kind::other;
    return m;
  }
  std::string_view pk, dk;
  if (obj["productKey"].get_string().get(pk) != simdjson::SUCCESS || pk.empty())
    return malformed("REQACK without a productKey");
  if (obj["deviceKey"].get_string().get(dk) != simdjson::SUCCESS || dk.empty())
    return malformed("REQACK without a deviceKey");
  dom::element ticket;
  if (obj["ticket"].get(ticket) != simdjson::SUCCESS) return malformed("REQACK without a ticket");
  std::string_view t;
  std::int64_t numeric_ticket = 0;
  if (ticket.get_string().get(t) == simdjson::SUCCESS) {
    m.ticket = t;
  } else if (ticket.get_int64().get(numeric_ticket) == simdjson::SUCCESS) {
    m.ticket = std::to_string(numeric_ticket);  // documented as a string; tolerated as a number
  } else {
    return malformed("REQACK ticket is not a string");
  }
  if (m.ticket.empty()) return malformed("REQACK with an empty ticket");
  dom::object data;
  if (obj["data"].get_object().get(data) != simdjson::SUCCESS)
    return malformed("REQACK without a data object");
  std::string_view status;
  if (data["status"].get_string().get(status) != simdjson::SUCCESS)
    return malformed("REQACK without data.status");
  if (status == "succ") {
    m.delivered = true;
  } else if (status == "fail") {
    m.delivered = false;
  } else {
    return malformed("REQACK data.status is neither \"succ\" nor \"fail\"");
  }
  dom::element at;
  if (!(data["sentAt"].get(at) == simdjson::SUCCESS && read_ms(at, m.at_ms)) &&
      !(obj["createdAt"].get(at) == simdjson::SUCCESS && read_ms(at, m.at_ms)))
    m.at_ms = 0;
  m.product_key = pk;
  m.device_key = dk;
  m.what = subscription_message::kind::reqack;
  return m;
}

}  // namespace fleetcast
