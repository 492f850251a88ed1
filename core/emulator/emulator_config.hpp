// emulator_config: everything `fleetcast emulate` can play, read from its
// JSON config file (snake_case keys; unknown keys are errors). Every fault is
// deterministic under `seed`: the same requests in the same order meet the
// same faults and the same per-device outcomes.
#pragma once

#include <fleetcast/core/protocol/pkdk.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

struct emulator_faults {
  double reset_ratio = 0;      // request executed, then the connection is reset (no answer)
  double http_502_ratio = 0;   // gateway answers 502 (nothing executed)
  double http_503_ratio = 0;   // gateway answers 503 with Retry-After (nothing executed)
  double code_5340_ratio = 0;  // body code 5340 (nothing executed)
  std::uint32_t close_after_requests = 0;  // Connection: close on the Nth answer of a connection
  double stall_ratio = 0;                  // request executed, answer delayed by stall_ms
  std::uint32_t stall_ms = 60000;
  std::uint32_t token_expires_after_requests = 0;  // a token is refused (5032) after N uses
  double missing_device_ratio = 0;                 // a device named in neither list of the answer
  std::uint32_t retry_after_s = 1;                 // the Retry-After of a 503
  // 1: the answer echoes the request's Authorization value in every ticket
  // and failure message (a careless server; the client must not store it).
  std::uint32_t echo_token = 0;
};

// The message subscription played: a REQACK per ticket issued, written as
// NDJSON to `ndjson` (the form an operator's SDK consumer would write)
// and/or served over AMQP 1.0 (amqp_listen). Every choice is deterministic
// under the seed, per device.
struct emulator_acks {
  std::string ndjson;       // REQACK lines appended here; empty = none
  std::string amqp_listen;  // the AMQP 1.0 subscription (TLS) on HOST:PORT; empty = none
  std::string access_key = "fleetcast-emulator";  // its SASL login's AccessKey and AccessSecret
  std::string access_secret = "fleetcast-emulator-secret";
  std::string access_secret_file;               // when given, the secret is read from it at start
  std::string queue = "a.1.fleetcast";          // consumed as /amq/queue/Q or /queues/Q
  std::uint32_t disconnect_after_messages = 0;  // drop the connection after every N sent
  // Drop the connection as every Nth acceptance arrives, before it is
  // applied: the client recorded the outcome, the broker still has the
  // message and delivers it again (a cut between journal and settle).
  std::uint32_t disconnect_before_accept = 0;
  // 1: a refused link's error echoes the client's login and the secret (a
  // broker that leaks credentials into its errors).
  std::uint32_t echo_login = 0;
  std::uint32_t delay_ms = 50;          // after the command was executed
  std::uint32_t delay_random_ms = 200;  // plus 0..random, uniform: acks come reordered
  double fail_ratio = 0;                // status "fail"
  double loss_ratio = 0;                // never sent
  double duplicate_ratio = 0;           // sent twice (the second after its own delay)
  double early_ratio = 0;               // sent at once, before the HTTP answer goes out
  bool enabled() const noexcept { return !ndjson.empty() || !amqp_listen.empty(); }
};

// What the subscription does for one ticket (emulator_acks, by the device's hash).
struct emulator_ack_plan {
  enum class fate : std::uint8_t { succ, fail, lost };
  fate what = fate::succ;
  std::uint32_t delay_ms = 0;   // after execution (0 with early)
  std::uint32_t second_ms = 0;  // a duplicate's delay; 0 = none
  bool early = false;
};
emulator_ack_plan plan_ack(const emulator_acks& acks, std::uint64_t device_hash,
                           std::uint64_t seed);
std::string_view to_string(emulator_ack_plan::fate f) noexcept;

// A cohort that fares otherwise (a rehearsal of a bad model): the devices of
// one productKey, or behind gateways of one productKey, fail at their own
// ratio, or are accepted and never acknowledged (silent).
struct emulator_cohort_fault {
  std::string product_key;          // empty: any
  std::string gateway_product_key;  // empty: any
  double failure_ratio = 0;         // in place of device_failure_ratio
  bool silent = false;              // accepted, but no REQACK ever comes
  bool matches(const pkdk_view& d) const noexcept {
    return (product_key.empty() || d.product_key == product_key) &&
           (gateway_product_key.empty() || d.gateway_product_key == gateway_product_key);
  }
};

struct emulator_config {
  std::string listen = "127.0.0.1:8443";
  bool tls = true;
  std::string cert_file;  // PEM; empty with tls = self-signed, generated at start
  std::string key_file;
  std::string self_signed_out = "fleetcast-emulator-cert.pem";  // where the generated cert goes
  unsigned threads = 0;                                         // 0 = the number of cores
  std::uint64_t seed = 1;
  std::vector<std::string> tokens;  // accepted tokens; empty = any non-empty token
  // Short-lived tokens: with N > 0, an access token is refused (5032) N s
  // after it was first used or issued, and PUT refreshToken issues new ones
  // (each refresh token once: a used one is refused with 5032).
  std::uint32_t token_lifetime_s = 0;
  std::vector<std::string> products;           // productKeys the user may command; empty = all
  std::uint32_t max_devices = 100;             // list-size limit (5312 above it)
  std::uint64_t max_body_bytes = 1024 * 1024;  // 413 above it
  double device_failure_ratio = 0;
  std::vector<std::string> failure_messages = {"device offline", "device not found"};
  std::uint32_t latency_fixed_ms = 0;
  std::uint32_t latency_random_ms = 0;  // plus 0..random, uniform
  double rate_limit_rps = 0;            // 0 = none; above it HTTP 429 with Retry-After
  emulator_faults faults;
  std::vector<emulator_cohort_fault> cohort_faults;  // the first that matches a device applies
  std::string record;  // NDJSON of every executed device command; empty = none
  emulator_acks acks;
};

struct emulator_config_result {
  std::optional<emulator_config> config;
  std::vector<std::string> errors;  // each "field: problem"
};

// Parses a config file's text over the defaults (`base`, e.g. with flags
// applied); relative paths are resolved against `config_file`'s folder.
emulator_config_result parse_emulator_config(std::string_view text, std::string_view config_file,
                                             const emulator_config& base = {});

}  // namespace fleetcast
