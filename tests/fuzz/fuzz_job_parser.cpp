// libFuzzer target: a job file written by a person.
#include <fleetcast/core/job/job_parser.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = fleetcast::parse_job(text, "/fuzz/job.json");
  if (!result.job && result.errors.empty()) std::abort();  // a refusal always says why
  for (const auto& e : result.errors) (void)e.describe("job.json");
  return 0;
}
