// attempt_classifier: what the engine does after one try of a batch, from
// how far the try got and what came back. Pure; every rule is unit-tested.
//
//   not written (connect, handshake or write failed) .... resend
//   written, no answer (reset, timeout, closed) ......... unknown_outcome policy:
//                                                         retry (uncertain) or fail (uncertain)
//   HTTP 429, 503 ....................................... resend, slow down (not executed)
//   HTTP 502, 504, other 5xx, 200 with a garbled body ... retry (uncertain: may have executed)
//   HTTP 401 or code 5032 ............................... fresh token, resend
//   code 5340 ........................................... retry (uncertain), slow down
//   code 5312 ........................................... split, shrink the batch size
//   code 5041, several devices .......................... split to isolate the refused ones
//   code 5041, one device ............................... that device fails
//   code 5106, a validation code, other HTTP 4xx ........ the job itself is wrong: stop
//   code 200 ............................................ account every device
//   any other code ...................................... the batch's devices fail with it
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <cstdint>
#include <string_view>

namespace fleetcast {

struct attempt_result {
  enum class stage { not_written, no_answer, answered };
  stage reached = stage::not_written;
  int http_status = 0;
  bool decoded = false;  // the body is an API answer (code, msg, lists)
  std::int64_t code = 0;
};

enum class attempt_action {
  account,           // a 200 answer: each device from the lists
  resend,            // nothing was executed: send again as it is
  retry,             // may have executed: send again, devices uncertain
  fail_uncertain,    // may have executed, policy "fail": devices fail, uncertain
  refresh_token,     // a fresh token, then send again
  split_too_long,    // 5312: halves, and smaller batches from now on
  split_permission,  // 5041: halves, to isolate the devices the user may not command
  fail_batch,        // the devices fail with the answer's code
  fail_job,          // the job is wrong (token missing, command refused): stop
};

struct attempt_verdict {
  attempt_action action;
  bool slow_down = false;  // throttling: the request rate halves for a while
  std::string_view why;    // for messages and logs
};

attempt_verdict classify_attempt(const attempt_result& a, std::size_t batch_devices,
                                 unknown_outcome_policy policy) noexcept;

// True for the reference page's codes that mean the command or list itself
// is invalid (5070-5075, 5311, 5328-5331).
bool is_validation_code(std::int64_t code) noexcept;

}  // namespace fleetcast
