// job: one rollout as a job file describes it (PRODUCT.md), with every
// default filled in and every path resolved against the job file's folder.
#pragma once

#include <fleetcast/core/input/device_reader.hpp>
#include <fleetcast/core/protocol/command.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace fleetcast {

// The range a setting may take (inclusive), declared beside its default:
// the job file parser and validate() check the same bounds.
template <typename T>
struct bounds {
  T min, max;
  constexpr bool holds(T v) const noexcept { return v >= min && v <= max; }
};
inline constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();

// Where requests go: scheme, host, port and an optional path prefix.
struct endpoint_config {
  std::string url;   // as written in the job
  bool tls = true;   // https
  std::string host;  // without brackets for an IPv6 literal
  std::uint16_t port = 443;
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
  // The request target of the batch endpoint.
  std::string target() const { return path_prefix + "/v2/binding/enduserapi/batchControlDevice"; }
};

// Where the token comes from; the token itself never lives in the job.
struct auth_config {
  enum class source { token_file, token_env, token_command };
  source kind = source::token_file;
  std::string token_file;                  // resolved path
  std::string token_env;                   // environment variable name
  std::vector<std::string> token_command;  // argv
  // A token_command that has not exited by then is killed (its whole group).
  std::uint32_t command_timeout_ms = 30000;
  static constexpr bounds<std::int64_t> command_timeout_ms_range{1, 600000};
  // The refresh token (api/SUBSCRIPTION.md): with one, fleetcast renews the
  // access token itself before it expires and on 5032, writing both new
  // tokens back to their files (mode 0600); from the environment they are
  // kept in memory only.
  std::string refresh_token_file;  // resolved path
  std::string refresh_token_env;
  bool refreshes() const noexcept {
    return !refresh_token_file.empty() || !refresh_token_env.empty();
  }
};

struct tls_config {
  bool verify = true;
  // Plain http:// to a host that is not loopback: the token and the command
  // cross the network unencrypted. Refused unless this says so.
  bool allow_plain_http = false;
  std::optional<std::string> ca_file;  // resolved path; system trust store when absent
};

struct device_source {
  std::optional<std::string> file;  // resolved path; absent for an inline array
  device_format format = device_format::json_array;
  std::string inline_json;  // the inline array, minified
};

struct batch_config {
  bool auto_size = true;  // "auto": start at max_devices, settle on what the server takes
  std::uint32_t max_devices = 500;
  static constexpr bounds<std::int64_t> max_devices_range{1, 100000};
};

struct rate_config {
  double requests_per_second = 20;  // 0 = unlimited
  static constexpr bounds<double> requests_per_second_range{0, 1e6};
  double devices_per_second = 0;  // 0 = unlimited
  static constexpr bounds<double> devices_per_second_range{0, 1e9};
  double burst = 5;  // bucket depth, in requests (and in devices for devices/s)
  static constexpr bounds<double> burst_range{1, 1e9};
};

struct timeout_config {
  std::uint32_t connect_ms = 5000;
  static constexpr bounds<std::int64_t> connect_ms_range{1, 600000};
  std::uint32_t request_ms = 30000;
  static constexpr bounds<std::int64_t> request_ms_range{1, 3600000};
  // How long sending pauses, reconnecting with backoff, while no connection
  // can be made mid-run, before the job fails (devices not sent: job_failed).
  std::uint32_t unreachable_s = 300;
  static constexpr bounds<std::int64_t> unreachable_s_range{0, 86400};
};

enum class unknown_outcome_policy { retry, fail };

struct retry_config {
  std::uint32_t max_attempts = 5;
  static constexpr bounds<std::int64_t> max_attempts_range{1, 100};
  std::uint32_t base_delay_ms = 200;
  static constexpr bounds<std::int64_t> base_delay_ms_range{0, 3600000};
  std::uint32_t max_delay_ms = 30000;  // at least base_delay_ms
  static constexpr bounds<std::int64_t> max_delay_ms_range{0, 3600000};
  unknown_outcome_policy unknown_outcome = unknown_outcome_policy::retry;
  // A server's Retry-After is honoured up to this many seconds.
  std::uint32_t max_retry_after_s = 300;
  static constexpr bounds<std::int64_t> max_retry_after_s_range{0, 86400};
};

struct ramp_config {
  double start_rps = 0;  // 0 = no ramp; needs rate.requests_per_second
  static constexpr bounds<double> start_rps_range{0.01, 1e6};
  double factor = 2;
  static constexpr bounds<double> factor_range{1, 1000};
  std::uint64_t every_devices = 1000;  // successful devices between steps
  static constexpr bounds<std::int64_t> every_devices_range{1, unbounded};
};

// What a rollout's devices are grouped by, for a stratified sample and the
// abort rules per cohort: the device's productKey (its model), or its
// gateway's productKey ("" for a device without a gateway).
enum class cohort_key : std::uint8_t { product_key, gateway_product_key };

// The gate at the end of a phase: the phase's devices (and, fleet-wide and
// per cohort, their failures) judged before the next phase may start.
struct phase_gate {
  // Above this ratio of failed (of the kinds in abort_on) to done, in the
  // phase or in one cohort of it, the rollout aborts; absent: the rollout's
  // abort_failure_ratio.
  std::optional<double> max_failure_ratio;
  double wait_s = 0;  // after a good verdict, before the next phase
  static constexpr bounds<double> wait_s_range{0, 7 * 86400};
  bool wait_for_ack = false;  // judged once the phase's accepted devices' acks are in
  // After a good verdict (and before wait_s), an operator's approval:
  // `fleetcast approve DIR`, or the daemon's POST /jobs/NAME/approve.
  bool wait_for_approval = false;
};

// One step of a phased rollout: by its end, `devices` of the fleet (or
// `share` of it) have been sent; cumulative, as in 5% -> 25% -> 100%.
struct phase_step {
  std::uint64_t devices = 0;  // a count, or 0 when `share` is given
  double share = 0;           // 0..1, from "P%"
  phase_gate gate;
};

struct rollout_config {
  std::uint64_t canary_devices = 0;
  static constexpr bounds<std::int64_t> canary_devices_range{0, unbounded};
  double canary_wait_s = 0;  // after a good canary verdict, before the rest
  static constexpr bounds<double> canary_wait_s_range{0, 86400};
  double abort_failure_ratio = 1.0;
  static constexpr bounds<double> abort_failure_ratio_range{0, 1};
  std::uint64_t abort_min_devices = 0;
  static constexpr bounds<std::int64_t> abort_min_devices_range{0, unbounded};
  // Which failures count toward abort_failure_ratio (bit per outcome_reason,
  // and with acks the two delivery failures below); all by default.
  std::uint32_t abort_on = ~0u;
  static constexpr std::uint32_t abort_on_delivery_failed = 1u << 16;
  static constexpr std::uint32_t abort_on_no_ack = 1u << 17;
  // With acks: the canary is judged once its accepted devices' delivery
  // outcomes are in too ("ack"), not on the answers alone ("answer").
  bool canary_wait_for_ack = false;
  ramp_config ramp;
  // Phases (canary_devices and its fields are a one-phase list); each
  // phase's devices a sample of the fleet chosen from the device's hash,
  // stratified by cohort (core/dispatch/phase_plan.hpp). The last phase's
  // gate is followed by the rest of the fleet.
  std::vector<phase_step> phases;
  cohort_key cohort_by = cohort_key::product_key;
  // Every cohort with at least cohort_min_devices devices has at least
  // min_per_cohort devices in the first phase (the canary).
  std::uint64_t cohort_min_devices = 10;
  static constexpr bounds<std::int64_t> cohort_min_devices_range{1, unbounded};
  // A cohort that breaks a rule: the rollout aborts (false), or that
  // cohort's devices not yet sent are skipped (excluded) and the rest goes
  // on, judged without it (rollout.on_cohort_failure "exclude").
  bool exclude_failing_cohorts = false;
  std::uint64_t min_per_cohort = 3;
  static constexpr bounds<std::int64_t> min_per_cohort_range{0, 1000};
  // The phases as configured: phases, or the canary's fields as one phase.
  std::vector<phase_step> steps() const {
    if (!phases.empty() || canary_devices == 0) return phases;
    phase_step canary;
    canary.devices = canary_devices;
    canary.gate.wait_s = canary_wait_s;
    canary.gate.wait_for_ack = canary_wait_for_ack;
    return {canary};
  }
  // At most this many devices behind one gateway in flight at once (0 = no cap).
  std::uint64_t max_per_gateway = 0;
  static constexpr bounds<std::int64_t> max_per_gateway_range{0, 1'000'000};
  // The window in which requests may be sent, in seconds since the Unix
  // epoch (ISO 8601 with an offset in the job file); absent = no bound.
  std::optional<std::int64_t> not_before;
  std::optional<std::int64_t> not_after;
};

// Where delivery acknowledgements come from (api/SUBSCRIPTION.md) and how
// long a device may wait for its own.
struct amqp_acks_config {
  std::string url;  // as written: amqps://HOST:PORT/VHOST
  std::string host;
  std::uint16_t port = 5671;
  std::string vhost = "quec-open";
  // The application's AccessKey and AccessSecret: one of file or env each.
  std::string access_key_file, access_key_env;
  std::string access_secret_file, access_secret_env;
  std::string queue;     // a.<enterprise user id>.<name>
  std::string hostname;  // the Open frame's hostname; default "vhost:<vhost>"
  std::string source;    // the receiving link's source; default "/amq/queue/<queue>"
  std::uint32_t idle_timeout_ms = 30000;
  static constexpr bounds<std::int64_t> idle_timeout_ms_range{30000, 60000};
};

struct acks_config {
  enum class source { none, ndjson, amqp };
  source kind = source::none;
  std::string ndjson;  // resolved path of a file that grows, or a FIFO
  amqp_acks_config amqp;
  std::uint32_t timeout_s = 600;  // after a device's answer
  static constexpr bounds<std::int64_t> timeout_s_range{1, 30 * 86400};
  bool enabled() const noexcept { return kind != source::none; }
};

struct job {
  std::string job_file;  // as given
  std::string name;      // default: the job file's name without its extension
  endpoint_config endpoint;
  auth_config auth;
  tls_config tls;
  command cmd;
  device_source devices;
  batch_config batch;
  rate_config rate;
  std::uint32_t connections = 4;
  static constexpr bounds<std::int64_t> connections_range{1, 1024};
  std::uint32_t pipeline_depth = 1;
  static constexpr bounds<std::int64_t> pipeline_depth_range{1, 64};
  // The largest answer body a connection reads (a larger one is an
  // unreadable answer); a 500-device answer is about 50 KB.
  std::uint32_t max_answer_bytes = 1 << 20;
  static constexpr bounds<std::int64_t> max_answer_bytes_range{4096, 1 << 30};
  timeout_config timeouts;
  retry_config retry;
  rollout_config rollout;
  std::string output_dir;  // resolved; default out/<name> beside the job file
  // An HTTP proxy ("http://[user:password@]host:port") or "direct"; absent:
  // the environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; core/job/proxy.hpp).
  std::optional<std::string> proxy;
  acks_config acks;
};

}  // namespace fleetcast
