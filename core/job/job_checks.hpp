// job_checks: the rules a job's values obey, on the job struct itself (so
// that a job built in code is held to the job file's rules). Internal to
// core/job: the parser uses it for the rules between fields, validate() for
// all of them.
#pragma once

#include <fleetcast/core/job/job_parser.hpp>

#include <string_view>
#include <vector>

namespace fleetcast {

enum class job_checks {
  all,             // every rule (validate())
  between_fields,  // only rules that relate two fields (the parser has checked each field)
};

void check_job(const job& j, std::vector<job_error>& errors, job_checks which);

// A job's name: letters, digits, '-', '_' and '.', at most 128, not "." or "..".
bool is_name_char(char c) noexcept;
bool is_valid_name(std::string_view name);

}  // namespace fleetcast
