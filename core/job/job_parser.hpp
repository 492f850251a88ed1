// job_parser: reads a job file (PRODUCT.md's schema) into a job. Unknown
// fields are errors (a typo must not silently change a rollout); a command
// that breaks a rule of the reference page is refused with that rule's code.
// All problems are reported at once, each naming its field (and line and
// column for malformed JSON).
#pragma once

#include <fleetcast/core/job/job.hpp>
#include <fleetcast/core/job/time_text.hpp>
#include <fleetcast/core/job/url.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

struct job_error {
  std::string field;        // e.g. "rate.burst"; empty for a syntax error
  std::string message;      // what is wrong
  std::optional<int> code;  // the reference page's code, for a command rule
  std::uint64_t line = 0;   // for syntax errors
  std::uint64_t column = 0;

  // "job.json:3:15: ..." or "job.json: command.cacheTime: ... (code 5329)".
  std::string describe(std::string_view job_file) const;
};

struct job_parse_result {
  std::optional<fleetcast::job> job;  // set when errors is empty
  std::vector<job_error> errors;
  // With errors in a valid JSON text: the job as far as it could be read
  // (so that a caller can check what it names, e.g. the device list, in the
  // same round). Its fields with errors hold defaults.
  std::optional<fleetcast::job> partial;
};

// Parses the text of a job file; `job_file` is its path (for relative paths,
// the default name and messages). Reads nothing from disk.
job_parse_result parse_job(std::string_view text, std::string_view job_file);

// The rules of the job file, on a job built in code (for the library): the
// same errors, with the same fields, messages and codes, as parse_job()
// gives for the same values. Empty when the job may run. The devices are
// not checked (the library takes them as a device_stream); set the
// endpoint's parts with parse_endpoint() (core/job/url.hpp).
std::vector<job_error> validate(const job& j);

// The job's time window against the clock (now_s: seconds since the epoch):
// an error on rollout.not_after when the window has ended (a run would send
// nothing: check and run refuse it), a notice when it opens more than a day
// after now_s (said, not refused). Both empty otherwise.
struct window_verdict {
  std::optional<job_error> error;
  std::string notice;
};
window_verdict check_window(const job& j, std::int64_t now_s);
// The same on a parse result, at the wall clock's now: an ended window
// joins its errors (the job is then only partial), a notice is returned.
std::string check_window_now(job_parse_result& parsed);

// A job's default name from its file's name without extension: characters
// other than letters, digits, '-', '_' and '.' become '_'; at most 128.
std::string job_name_from_stem(std::string_view stem);

}  // namespace fleetcast
