// milter/milter_main.h — milter mode's process: the plugin host for one profile, libmilter's
// socket and its main loop.
// Owns: start-up in milter mode (signals, plugin host, smfi_register, smfi_opensocket,
// smfi_main) and its error messages, which name the flag at fault.
// Must not touch: the proxy's server (server/server.cc) or its listeners.
// Threading: run() blocks in smfi_main() on the main thread until SIGTERM, SIGINT or SIGHUP
// (libmilter's own signal thread stops it); connections run on libmilter's threads.
#pragma once

#include "config/config.h"
#include "config/milter_flags.h"

namespace mailgate::milter {

// Runs milter mode until stopped. Returns the process exit code.
int run(const config::GatewayConfig& config, const config::MilterConfig& milter);

}  // namespace mailgate::milter
