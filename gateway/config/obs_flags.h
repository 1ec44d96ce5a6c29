// config/obs_flags.h — the observability flags (--metrics_listen, --trace_*) and the
// obs::ObsConfig they make. Defined in obs_flags.cc; errors name the flag at fault.
// Owns: those flags only. Must not touch: other modules' flags (flags.cc, dns_flags.cc, ...).
// Thread-safety: read at start-up from the main thread.
#pragma once

#include <string>

#include "obs/obs_config.h"
#include "util/expected.h"

namespace mailgate::config {

Expected<obs::ObsConfig, std::string> obs_config_from_flags();

}  // namespace mailgate::config
