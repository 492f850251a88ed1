// subscription_message: one message of the platform's message subscription
// (api/SUBSCRIPTION.md), as far as delivery acknowledgements need it. Only
// `type: "REQACK"` matters; every other type is told apart so it can be
// counted and ignored, and a body that is not such a message says why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fleetcast {

struct subscription_message {
  enum class kind : std::uint8_t { reqack, other, malformed };
  kind what = kind::malformed;
  // reqack: the device and the ticket the acknowledgement is for.
  std::string product_key, device_key, ticket;
  bool delivered = false;  // data.status "succ" (false: "fail")
  // The platform's time of the acknowledgement (ms since the epoch):
  // data.sentAt (a number, or a string of digits in older messages), else
  // createdAt, else 0.
  std::int64_t at_ms = 0;
  std::string error;  // malformed: what is wrong
};

// Reads one message body (UTF-8 JSON). Never throws.
subscription_message read_subscription_message(std::string_view body);

}  // namespace fleetcast
