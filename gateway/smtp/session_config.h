// smtp/session_config.h — the settings one client session runs with.
// Owns: plain values built from flags (config/) and swapped whole on SIGHUP; a session takes
// a snapshot (shared_ptr<const SessionConfig>) when it starts and keeps it to the end.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "smtp/data_decoder.h"

namespace mailgate::smtp {

struct SessionConfig {
  std::string hostname = "localhost";          // in the greeting, EHLO reply and Received
  uint64_t max_message_size = 50ull << 20;     // advertised with SIZE, enforced on DATA
  size_t max_recipients = 100;                 // accepted RCPTs per transaction
  size_t max_errors = 20;                      // error replies before 421 and close
  size_t max_command_line = 512;               // octets including CRLF (RFC 5321 §4.5.3.1.4)
  size_t max_text_line = 1000;                 // octets including CRLF (RFC 5321 §4.5.3.1.6)
  BareEolPolicy bare_eol = BareEolPolicy::kReject;
  std::chrono::milliseconds client_timeout{300'000};  // server timeout, RFC 5321 §4.5.3.2.7
  std::chrono::milliseconds greet_pause{0};  // wait before the greeting to catch early talkers
  std::string spool_dir = "/var/spool/mailgate";      // where large messages spill to disk
  size_t spool_memory_limit = 1 << 20;                // bytes of a message kept in memory
};

}  // namespace mailgate::smtp
