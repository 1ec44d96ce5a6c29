// relay/relay_config.h — settings of the backend connection (from flags, see config/).
// Owns: plain values only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mailgate::relay {

struct RelayConfig {
  std::string host = "127.0.0.1";  // backend MTA address or name
  uint16_t port = 10025;
  std::string helo_name;           // our name in EHLO to the backend
  // RFC 5321 §4.5.3.2 client-side timeouts, plus connect.
  std::chrono::milliseconds connect_timeout{30'000};
  std::chrono::milliseconds greeting_timeout{300'000};    // initial 220
  std::chrono::milliseconds command_timeout{300'000};     // EHLO, XCLIENT, MAIL, RCPT, RSET
  std::chrono::milliseconds data_init_timeout{120'000};   // reply to DATA
  std::chrono::milliseconds data_block_timeout{180'000};  // each write of message data
  std::chrono::milliseconds data_end_timeout{600'000};    // reply to the final "."
  size_t pool_max_idle = 32;                              // idle connections kept per thread
  std::chrono::milliseconds pool_idle_timeout{60'000};    // idle connection closed after
  bool use_xclient = true;                                // when the backend offers it
  bool use_xforward = true;                               // when offered and XCLIENT is not
  // STARTTLS to the backend when it offers it (opportunistic: no certificate check, a
  // refused STARTTLS leaves the connection in plaintext, a failed handshake fails the step).
  bool starttls = false;
};

}  // namespace mailgate::relay
