// url: the host and port of a URL's authority, shared by the endpoint
// (job_parser) and a proxy (proxy.hpp), so that both say the same thing
// about the same mistake.
#pragma once

#include <fleetcast/core/job/job.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcast {

struct url_authority {
  std::string host;  // without brackets for an IPv6 literal
  std::optional<std::uint16_t> port;
};

// "host", "host:port", "[v6]", "[v6]:port": every problem appended to
// `problems` ("has no host", "has an empty port", "has a port that is not a
// number 1-65535", ...).
void parse_authority(std::string_view text, url_authority& out, std::vector<std::string>& problems);

// Parses an endpoint URL: http:// or https://, a host, an optional port and
// an optional path prefix. Returns every problem ("; "-separated), or nullopt.
// An endpoint that carries the API's own path (the whole URL pasted) is
// refused, naming the address to give instead.
std::optional<std::string> parse_endpoint(std::string_view url, endpoint_config& out);

// A host that is this machine by its address alone: 127.0.0.0/8, ::1, or
// the name localhost (no lookup is made).
bool is_loopback_host(std::string_view host) noexcept;

// Parses the subscription's URL: amqps://HOST[:PORT][/VHOST] (plain amqp://
// is refused: the platform takes TLS only). Sets url, host, port, vhost.
std::optional<std::string> parse_amqp_url(std::string_view url, amqp_acks_config& out);

// A queue name as the platform makes them: 1 to 64 of [A-Za-z0-9_-.].
bool is_queue_name(std::string_view name) noexcept;

}  // namespace fleetcast
