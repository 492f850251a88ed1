// emulator: the batchControlDevice endpoint, served over HTTPS or plain HTTP
// on its own threads, for rehearsals, tests and benchmarks. Start one in
// process on a port of your choosing (0 = any free port); the request
// handling itself is core's emulator_session.
//
// Lifetime: serving starts in the constructor and ends in stop() or the
// destructor; connections still open then are dropped.
#pragma once

#include <fleetcast/core/emulator/emulator_config.hpp>
#include <fleetcast/core/emulator/emulator_state.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace fleetcast::net {

class emulator {
 public:
  // Binds, loads or generates the TLS identity, opens the record file and
  // starts config.threads threads (0 = the number of cores). Throws
  // std::runtime_error naming what failed (address in use, bad certificate).
  explicit emulator(emulator_config config);
  ~emulator();
  emulator(const emulator&) = delete;
  emulator& operator=(const emulator&) = delete;

  std::uint16_t port() const noexcept;
  std::string host() const;  // the bound address, e.g. "127.0.0.1" or "::1"
  // "https://127.0.0.1:PORT" (brackets for IPv6), for a job's endpoint.
  std::string url() const;
  bool tls() const noexcept;
  // The certificate a client should trust (PEM; empty for plain HTTP).
  const std::string& certificate_pem() const noexcept;
  const emulator_state& state() const noexcept;
  unsigned threads() const noexcept;

  // The AMQP subscription's port (acks.amqp_listen; 0 without it), and its
  // counters as JSON ("null" without it).
  std::uint16_t amqp_port() const noexcept;
  std::string amqp_stats_json() const;

  // Stops accepting and serving, joins the threads, flushes the record.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fleetcast::net
