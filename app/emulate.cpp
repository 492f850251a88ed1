// The emulate command (see emulate.hpp).
#include "app/emulate.hpp"
#include "app/say.hpp"

#include <fleetcast/net/server/emulator.hpp>
#include "app/library_parts.hpp"
#include "core/emulator/emulator_session.hpp"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

namespace fleetcast::app {
namespace {}  // namespace

int emulate(const emulate_flags& set) {
  const auto& config_file = set.config_file;
  emulator_config config;
  if (config_file) {
    std::string text, error;
    if (!read_text_file(*config_file, text, error)) {
      say("fleetcast emulate: {}\n", error);
      return 2;
    }
    auto parsed = parse_emulator_config(text, *config_file);
    if (!parsed.config) {
      for (const auto& e : parsed.errors) say("fleetcast emulate: {}: {}\n", *config_file, e);
      return 2;
    }
    config = std::move(*parsed.config);
  }
  if (set.listen) config.listen = *set.listen;
  if (set.record) config.record = *set.record;
  if (set.cert_out) config.self_signed_out = *set.cert_out;
  if (set.threads) config.threads = *set.threads;
  if (set.seed) config.seed = *set.seed;
  if (set.max_devices) config.max_devices = *set.max_devices;
  if (set.plain) config.tls = false;

  // The stop signals, as every subcommand takes them (asio::signal_set);
  // the emulator serves on threads of its own meanwhile.
  boost::asio::io_context ioc(1);
  boost::asio::signal_set stop_signals(ioc, SIGINT, SIGTERM);

  std::optional<net::emulator> server;
  try {
    server.emplace(config);
  } catch (const std::exception& e) {
    say("fleetcast emulate: {}\n", e.what());
    return 2;
  }
  if ((server->tls() || server->amqp_port()) && config.cert_file.empty()) {
    std::ofstream out(config.self_signed_out, std::ios::binary | std::ios::trunc);
    out << server->certificate_pem();
    if (!out) {
      say("fleetcast emulate: {}: cannot write the certificate\n", config.self_signed_out);
      return 2;
    }
    fmt::print(
        stderr,
        "fleetcast emulate: self-signed certificate for localhost, 127.0.0.1 and ::1 in {}\n",
        config.self_signed_out);
  }
  // The subscription's line before the serving line: a reader that waits for
  // "serving" (the tests, a script) finds both.
  if (server->amqp_port()) {
    say("fleetcast emulate: subscription amqps://{}:{}/quec-open (queue {}: source "
        "/amq/queue/{} or /queues/{}; access key {})\n",
        server->host(), server->amqp_port(), config.acks.queue, config.acks.queue,
        config.acks.queue, config.acks.access_key);
  }
  say("fleetcast emulate: serving {}{} (threads {}, seed {}, max devices {})\n", server->url(),
      batch_control_path, server->threads(), config.seed, config.max_devices);
  int sig = 0;
  stop_signals.async_wait([&sig](boost::system::error_code, int s) { sig = s; });
  ioc.run();
  const bool subscription = server->amqp_port() != 0;
  server->stop();
  say("fleetcast emulate: stopped by {}; counters: {}", sig == SIGINT ? "SIGINT" : "SIGTERM",
      server->state().stats_json());
  if (subscription)
    say("fleetcast emulate: subscription counters: {}\n", server->amqp_stats_json());
  return 0;
}

}  // namespace fleetcast::app
