// `fleetcast approve|pause|continue DIR`: an operator's act on the rollout
// running in an output folder, from another shell (net/session/
// operator_requests.hpp): the request written into the folder, the running
// process's answer waited for and said.
#pragma once

#include <fleetcast/core/output/operator_act.hpp>

#include <string>

namespace fleetcast::app {

// 0: applied; 1: not applied (the answer says why) or no answer within
// `timeout_s`; 2: DIR is not an output folder, or no process runs in it.
int act_on_folder(operator_act act, const std::string& dir, const std::string& by,
                  double timeout_s);

}  // namespace fleetcast::app
