// config/endpoint.h — "ADDR:PORT" text to an endpoint, for --listen and --backend.
// Owns: the syntax of endpoints in flags ("127.0.0.1:25", "[::1]:25", "mx.example:25").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace mailgate::config {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};

// Splits "host:port" or "[v6]:port". The port must be 0..65535 (0 only if allow_zero).
// Errors are messages without the flag name ("missing port in 'x'").
Expected<HostPort, std::string> parse_host_port(std::string_view text, bool allow_zero);

}  // namespace mailgate::config
