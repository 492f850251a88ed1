// Attempt classification (see attempt_classifier.hpp).
#include "core/protocol/attempt_classifier.hpp"

namespace fleetcast {

bool is_validation_code(std::int64_t code) noexcept {
  return (code >= 5070 && code <= 5075) || code == 5311 || (code >= 5328 && code <= 5331);
}

attempt_verdict classify_attempt(const attempt_result& a, std::size_t batch_devices,
                                 unknown_outcome_policy policy) noexcept {
  using act = attempt_action;
  const auto unknown = [&](std::string_view why) -> attempt_verdict {
    return {policy == unknown_outcome_policy::retry ? act::retry : act::fail_uncertain, false, why};
  };
  switch (a.reached) {
    case attempt_result::stage::not_written:
      return {act::resend, false, "the request was not sent"};
    case attempt_result::stage::no_answer:
      return unknown("the request was sent but no answer came");
    case attempt_result::stage::answered:
      break;
  }
  const int s = a.http_status;
  if (s == 429) return {act::resend, true, "HTTP 429 Too Many Requests"};
  if (s == 503) return {act::resend, true, "HTTP 503 Service Unavailable"};
  if (s == 502) return unknown("HTTP 502 Bad Gateway");
  if (s == 504) return unknown("HTTP 504 Gateway Timeout");
  if (s == 401) return {act::refresh_token, false, "HTTP 401"};
  if (s >= 500) return unknown("HTTP 5xx");
  if (s != 200) return {act::fail_job, false, "the endpoint refused the request (HTTP 4xx)"};
  if (!a.decoded) return unknown("HTTP 200 with an answer that cannot be read");

  const auto c = a.code;
  if (c == 200) return {act::account, false, "accepted"};
  if (c == 5032) return {act::refresh_token, false, "token verification failed (5032)"};
  if (c == 5340) {
    auto v = unknown("batch control devices failed (5340)");
    v.slow_down = true;
    return v;
  }
  if (c == 5312) {
    if (batch_devices <= 1)
      return {act::fail_job, false, "the server accepts no device per request (5312)"};
    return {act::split_too_long, false, "too many devices in one request (5312)"};
  }
  if (c == 5041) {
    if (batch_devices > 1) return {act::split_permission, false, "no permission (5041)"};
    return {act::fail_batch, false, "no permission (5041)"};
  }
  if (c == 5106) return {act::fail_job, false, "no token was sent (5106)"};
  if (is_validation_code(c)) return {act::fail_job, false, "the platform refused the command"};
  return {act::fail_batch, false, "the platform refused the request"};
}

}  // namespace fleetcast
