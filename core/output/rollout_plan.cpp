// Dry-run planning (see rollout_plan.hpp).
#include "core/output/rollout_plan.hpp"

#include "core/dispatch/chunker.hpp"
#include "core/protocol/request_encoder.hpp"

#include <algorithm>

namespace fleetcast {

rollout_plan plan_rollout(const job& j, device_stream& devices, std::size_t max_problems) {
  rollout_plan plan;
  plan.batch_size = j.batch.max_devices;
  chunker chunks(j.batch.max_devices);
  const request_encoder encoder(j.cmd);
  batch current;
  std::string body;

  const auto emit = [&] {
    chunks.take(current);
    body.clear();
    encoder.encode(current, body);
    ++plan.batches;
    plan.last_batch = current.size();
    plan.body_bytes += body.size();
    plan.largest_body = std::max(plan.largest_body, body.size());
  };

  device_record record;
  record_kind kind;
  while (devices.next(record, kind)) {
    ++plan.records;
    if (kind != record_kind::device) {
      ++(kind == record_kind::duplicate ? plan.duplicates : plan.invalid);
      if (plan.problems.size() < max_problems) plan.problems.push_back(record.problem);
      continue;
    }
    ++plan.devices;
    if (chunks.add_hashed(record.index, record.device, record.fingerprint)) emit();
  }
  if (!chunks.empty()) emit();
  plan.fatal = devices.fatal_error();
  plan.filter_bytes = devices.memory_bytes();
  plan.canary_devices = std::min(j.rollout.canary_devices, plan.devices);

  double seconds = 0;
  const auto& ramp = j.rollout.ramp;
  if (ramp.start_rps > 0 && j.rate.requests_per_second > 0 && plan.batches > 0) {
    // Step by step: every_devices devices at each rate, up to the configured one.
    const double per_request =
        static_cast<double>(plan.devices) / static_cast<double>(plan.batches);
    double left = static_cast<double>(plan.devices);
    double rate = std::min(ramp.start_rps, j.rate.requests_per_second);
    while (left > 0) {
      const double step = rate >= j.rate.requests_per_second
                              ? left
                              : std::min(left, static_cast<double>(ramp.every_devices));
      seconds += step / per_request / rate;
      left -= step;
      rate = std::min(rate * ramp.factor, j.rate.requests_per_second);
    }
  } else if (j.rate.requests_per_second > 0) {
    seconds = std::max(seconds, static_cast<double>(plan.batches) / j.rate.requests_per_second);
  }
  if (j.rate.devices_per_second > 0) {
    seconds = std::max(seconds, static_cast<double>(plan.devices) / j.rate.devices_per_second);
  }
  for (const auto& step : j.rollout.steps()) seconds += step.gate.wait_s;  // the gates' waits
  plan.min_seconds = seconds;
  return plan;
}

}  // namespace fleetcast
