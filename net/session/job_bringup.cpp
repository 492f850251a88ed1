// The bring-up of a job's run (see job_bringup.hpp).
#include "net/session/job_bringup.hpp"

namespace fleetcast::net {

bringup_result bring_up(const job& j, output_request& request,
                        const std::optional<shard_spec>& shard, bool emulated, job_parts& parts,
                        net::rollout_options& options) {
  bringup_result r;
  const auto refuse = [&r](bringup_step step, open_outcome outcome) {
    r.step = step;
    r.outcome = outcome;
    return r;
  };
  if (!identify(j, emulated, request.identity, r.error, &parts.newlines))
    return refuse(bringup_step::identify, open_outcome::refused);
  // A canary's census (a list that cannot be read twice is refused), before
  // the folder is made: nothing of a refused run is left behind.
  if (!plan_job_phases(j, shard, options, r.error))
    return refuse(bringup_step::devices, open_outcome::refused);
  if (const auto o = parts.output.open(j.output_dir, request, r.error); o != open_outcome::ok)
    return refuse(bringup_step::folder, o);
  if (parts.output.needs_verify()) {  // the kept results name the records at their index
    opened_devices check;
    if (!open_devices(j, check, r.error))
      return refuse(bringup_step::devices, open_outcome::refused);
    if (shard) check.stream->set_shard(*shard);
    if (const auto o = parts.output.verify(*check.stream, r.error); o != open_outcome::ok)
      return refuse(bringup_step::folder, o);
  }
  if (!open_devices(j, parts.devices, r.error))
    return refuse(bringup_step::devices, open_outcome::refused);
  if (shard) parts.devices.stream->set_shard(*shard);
  parts.output.attach(options);
  return r;
}

std::unique_ptr<delivery_stage> open_delivery_stage(boost::asio::any_io_executor ex, const job& j,
                                                    job_output& output,
                                                    net::rollout_options& options,
                                                    std::string& error) {
  auto stage = std::make_unique<delivery_stage>(ex, j, output.sink());
  if (!stage->open(j.output_dir, error, options.extra_ca_pem, options.system_trust_store)) {
    stage->abandon();
    return nullptr;
  }
  stage->attach(options);
  return stage;
}

}  // namespace fleetcast::net
