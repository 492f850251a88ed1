// Emulator configuration parsing (see emulator_config.hpp).
#include <fleetcast/core/emulator/emulator_config.hpp>

#include "core/job/config_reader.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>

namespace fleetcast {

namespace dom = simdjson::dom;
using config_reader = detail::config_reader;

emulator_config_result parse_emulator_config(std::string_view text, std::string_view config_file,
                                             const emulator_config& base) {
  emulator_config_result result;
  auto& errors = result.errors;
  dom::parser parser;
  simdjson::padded_string padded;
  dom::element root;
  if (!detail::parse_config_root(text, parser, padded, root, errors)) return result;
  config_reader r(errors, std::filesystem::path(config_file).parent_path());
  emulator_config c = base;
  dom::object top;
  if (!r.object(
          root, "",
          {"listen", "tls", "self_signed_out", "threads", "seed", "tokens", "token_lifetime_s",
           "products", "max_devices", "max_body_bytes", "device_failure_ratio", "failure_messages",
           "latency_ms", "rate_limit_rps", "faults", "record", "acks", "cohort_faults"},
          top)) {
    return result;
  }
  r.string(top, "", "listen", c.listen);
  dom::element e;
  if (top["tls"].get(e) == simdjson::SUCCESS) {
    bool flag;
    dom::object tls;
    if (e.get_bool().get(flag) == simdjson::SUCCESS) {
      c.tls = flag;
      c.cert_file.clear();
      c.key_file.clear();
    } else if (e.is_null()) {
      c.tls = true;  // self-signed
    } else if (r.object(e, "tls", {"cert", "key"}, tls)) {
      c.tls = true;
      const bool cert = r.string(tls, "tls", "cert", c.cert_file);
      const bool key = r.string(tls, "tls", "key", c.key_file);
      if (cert != key) {
        r.fail("tls", "", "needs both cert and key (PEM files)");
      } else if (cert) {
        c.cert_file = r.path(c.cert_file);
        c.key_file = r.path(c.key_file);
      }
    }
  }
  if (r.string(top, "", "self_signed_out", c.self_signed_out)) {
    c.self_signed_out = r.path(c.self_signed_out);
  }
  r.integer(top, "", "threads", c.threads, 0, 256);
  r.integer(top, "", "seed", c.seed, 0, UINT64_MAX);
  r.strings(top, "tokens", c.tokens);
  r.integer(top, "", "token_lifetime_s", c.token_lifetime_s, 0, 30 * 86400);
  r.strings(top, "products", c.products);
  r.integer(top, "", "max_devices", c.max_devices, 1, 1'000'000);
  r.integer(top, "", "max_body_bytes", c.max_body_bytes, 1024, 1ULL << 32);
  r.ratio(top, "", "device_failure_ratio", c.device_failure_ratio);
  r.strings(top, "failure_messages", c.failure_messages);
  if (c.failure_messages.empty()) r.fail("", "failure_messages", "must not be empty");
  if (top["latency_ms"].get(e) == simdjson::SUCCESS) {
    std::uint64_t fixed;
    dom::object lat;
    if (e.get_uint64().get(fixed) == simdjson::SUCCESS) {
      c.latency_fixed_ms = static_cast<std::uint32_t>(std::min<std::uint64_t>(fixed, 3'600'000));
    } else if (r.object(e, "latency_ms", {"fixed", "random"}, lat)) {
      r.integer(lat, "latency_ms", "fixed", c.latency_fixed_ms, 0, 3'600'000);
      r.integer(lat, "latency_ms", "random", c.latency_random_ms, 0, 3'600'000);
    }
  }
  r.number(top, "", "rate_limit_rps", c.rate_limit_rps, 0, 1e9);
  if (top["cohort_faults"].get(e) == simdjson::SUCCESS) {
    dom::array list;
    if (e.get_array().get(list) != simdjson::SUCCESS) {
      r.fail("", "cohort_faults",
             "must be a list of {\"productKey\" or \"gatewayProductKey\", "
             "\"failure_ratio\" or \"silent\"}");
    } else {
      std::size_t k = 0;
      for (dom::element item : list) {
        const auto at = fmt::format("cohort_faults[{}]", k++);
        dom::object o;
        if (!r.object(item, at, {"productKey", "gatewayProductKey", "failure_ratio", "silent"}, o))
          continue;
        emulator_cohort_fault f;
        r.string(o, at, "productKey", f.product_key);
        r.string(o, at, "gatewayProductKey", f.gateway_product_key);
        if (f.product_key.empty() && f.gateway_product_key.empty())
          r.fail(at, "productKey", "or gatewayProductKey is required");
        r.ratio(o, at, "failure_ratio", f.failure_ratio);
        dom::element silent;
        if (o["silent"].get(silent) == simdjson::SUCCESS &&
            silent.get_bool().get(f.silent) != simdjson::SUCCESS)
          r.fail(at, "silent", "must be true or false");
        c.cohort_faults.push_back(std::move(f));
      }
    }
  }
  if (top["acks"].get(e) == simdjson::SUCCESS) {
    dom::object a;
    if (r.object(e, "acks",
                 {"ndjson", "amqp_listen", "access_key", "access_secret_file", "queue",
                  "disconnect_after_messages", "disconnect_before_accept", "echo_login", "delay_ms",
                  "delay_random_ms", "fail_ratio", "loss_ratio", "duplicate_ratio", "early_ratio"},
                 a)) {
      auto& x = c.acks;
      std::string path;
      if (r.string(a, "acks", "ndjson", path)) x.ndjson = r.path(path);
      r.string(a, "acks", "amqp_listen", x.amqp_listen);
      r.string(a, "acks", "access_key", x.access_key);
      r.string(a, "acks", "queue", x.queue);
      r.integer(a, "acks", "disconnect_after_messages", x.disconnect_after_messages, 0, UINT32_MAX);
      r.integer(a, "acks", "disconnect_before_accept", x.disconnect_before_accept, 0, UINT32_MAX);
      r.integer(a, "acks", "echo_login", x.echo_login, 0, 1);
      // The secret from a file, as a client keeps it (read when serving).
      if (r.string(a, "acks", "access_secret_file", path)) x.access_secret_file = r.path(path);
      r.integer(a, "acks", "delay_ms", x.delay_ms, 0, 3'600'000);
      r.integer(a, "acks", "delay_random_ms", x.delay_random_ms, 0, 3'600'000);
      r.ratio(a, "acks", "fail_ratio", x.fail_ratio);
      r.ratio(a, "acks", "loss_ratio", x.loss_ratio);
      r.ratio(a, "acks", "duplicate_ratio", x.duplicate_ratio);
      r.ratio(a, "acks", "early_ratio", x.early_ratio);
    }
  }
  if (top["faults"].get(e) == simdjson::SUCCESS) {
    dom::object f;
    if (r.object(e, "faults",
                 {"reset_ratio", "http_502_ratio", "http_503_ratio", "code_5340_ratio",
                  "close_after_requests", "stall_ratio", "stall_ms", "token_expires_after_requests",
                  "missing_device_ratio", "retry_after_s", "echo_token"},
                 f)) {
      auto& x = c.faults;
      r.ratio(f, "faults", "reset_ratio", x.reset_ratio);
      r.ratio(f, "faults", "http_502_ratio", x.http_502_ratio);
      r.ratio(f, "faults", "http_503_ratio", x.http_503_ratio);
      r.ratio(f, "faults", "code_5340_ratio", x.code_5340_ratio);
      r.integer(f, "faults", "close_after_requests", x.close_after_requests, 0, UINT32_MAX);
      r.ratio(f, "faults", "stall_ratio", x.stall_ratio);
      r.integer(f, "faults", "stall_ms", x.stall_ms, 0, 3'600'000);
      r.integer(f, "faults", "token_expires_after_requests", x.token_expires_after_requests, 0,
                UINT32_MAX);
      r.ratio(f, "faults", "missing_device_ratio", x.missing_device_ratio);
      r.integer(f, "faults", "retry_after_s", x.retry_after_s, 0, 100'000'000);
      r.integer(f, "faults", "echo_token", x.echo_token, 0, 1);
    }
  }
  if (top["record"].get(e) == simdjson::SUCCESS) {
    if (e.is_null()) {
      c.record.clear();
    } else if (r.string(top, "", "record", c.record)) {
      c.record = r.path(c.record);
    }
  }
  if (errors.empty()) result.config = std::move(c);
  return result;
}

}  // namespace fleetcast
