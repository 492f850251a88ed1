// The library's rollout parts that app/ still drives itself (the daemon's
// jobs), by their names in app/.
#pragma once

#include "net/session/delivery_stage.hpp"
#include "net/session/job_bringup.hpp"
#include "net/session/job_files.hpp"
#include "net/session/job_output.hpp"
#include "net/session/operator_requests.hpp"
#include "net/session/subscription_hub.hpp"

namespace fleetcast::app {

using net::bring_up;
using net::bringup_result;
using net::bringup_step;
using net::delivery_stage;
using net::estimate_total;
using net::file_sha256;
using net::find_outcome;
using net::folder_in_use;
using net::identify;
using net::job_output;
using net::job_parts;
using net::make_request;
using net::max_job_file_bytes;
using net::open_delivery_stage;
using net::open_devices;
using net::open_outcome;
using net::opened_devices;
using net::output_request;
using net::probe_devices;
using net::read_text_file;
using net::sendable_problems;
using net::steady_ms;
using net::submit_request;
using net::subscription_hub;
using net::text_sha256;

}  // namespace fleetcast::app
