// plugins/milter/settings.h — the milter plugin's settings JSON:
//
//   {"milters": [{"name": "opendkim", "socket": "inet:8891@127.0.0.1",
//                 "connect_timeout_ms": 1000, "timeout_ms": 3000, "fail_mode": "tempfail"}]}
//
// Owns: parsing and checking them (unknown keys, wrong types, duplicate names, bad sockets are
// errors that name the milter and the key). Must not touch: anything at run time.
#pragma once

#include <string_view>
#include <vector>

#include "client.h"

namespace mailgate::milter_client {

// Throws std::invalid_argument with a message naming the key at fault.
std::vector<MilterConfig> parse_settings(std::string_view json);

const char* fail_mode_name(FailMode mode);

}  // namespace mailgate::milter_client
