// config/milter_flags.h — the flags of milter mode (--mode, --milter_socket, --milter_profile,
// --milter_timeout, --milter_socket_mode) and the MilterConfig they make.
// Owns: those flags and their validation; every error names the flag at fault.
// Must not touch: the proxy's flags (flags.cc) or libmilter itself (milter/ does that).
// Threading: start-up only.
#pragma once

#include <string>

#include "util/expected.h"

namespace mailgate::config {

enum class Mode {
  kProxy,   // SMTP in front of a backend MTA (server/)
  kMilter,  // a libmilter filter inside Postfix or Sendmail (milter/)
};

struct MilterConfig {
  std::string socket;  // libmilter connection spec: inet:PORT@HOST, inet6:..., unix:PATH
  std::string profile = "inbound";  // the policy profile whose plugins run
  int timeout_seconds = 7210;       // libmilter's I/O timeout towards the MTA
  int socket_mode = -1;             // unix socket: permission bits to set; -1 = leave (umask)
};

// The --mode flag: "proxy" or "milter"; the error names the flag.
Expected<Mode, std::string> mode_from_flags();

// The milter flags, checked: a socket spec libmilter understands, a profile name.
Expected<MilterConfig, std::string> milter_config_from_flags();

// Checks one --milter_socket value ("inet:8891@127.0.0.1", "inet6:8891@[::1]",
// "unix:/run/mailgate/milter.sock", "local:PATH"). Empty on success, else why not.
std::string check_milter_socket(const std::string& spec);

}  // namespace mailgate::config
