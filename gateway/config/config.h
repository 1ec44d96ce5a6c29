// config/config.h — the gateway's whole configuration, built from command-line flags.
// Owns: flag definitions (flags.cc), their validation and the GatewayConfig they produce.
// Every error message names the flag at fault. Reloadable parts (session settings, log
// level) are rebuilt on SIGHUP from the flagfile; listeners and the backend are not.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "log/log.h"
#include "relay/relay_config.h"
#include "smtp/session_config.h"
#include "util/expected.h"

namespace mailgate::config {

struct ListenerSpec {
  asio::ip::tcp::endpoint endpoint;
  std::string profile = "inbound";
  std::string text;  // as given, for logs
  bool implicit_tls = false;  // the profile is in --smtps_profiles: TLS from the first byte
  bool submission = false;    // the profile is in --submission_profiles: AUTH required
};

struct GatewayConfig {
  std::vector<ListenerSpec> listeners;
  relay::RelayConfig relay;
  smtp::SessionConfig session;
  size_t max_connections = 1000;
  size_t max_connections_per_ip = 20;
  log::Level log_level = log::Level::kInfo;
  unsigned threads = 0;  // I/O threads; 0 = one per core
  double shutdown_grace_seconds = 30;
  std::string flagfile;  // re-read on SIGHUP when set
  // Plugins and policy.
  std::string policy_db;                   // SQLite policy; created on first run
  std::string plugin_dir;                  // where relative plugin paths point
  size_t plugin_threads = 4;               // worker threads for blocking plugins
  size_t plugin_queue = 1024;              // queued plugin calls before fail modes apply
  std::chrono::milliseconds policy_poll{1000};  // how often the database is checked for edits
  // TLS (net/tls_context): PEM files, re-read on SIGHUP; empty: no STARTTLS, no smtps.
  std::string tls_cert;
  std::string tls_key;
  // Failed AUTH per client address (net/auth_throttle): limit within the window; 0 = off.
  size_t auth_max_failures = 5;
  std::chrono::milliseconds auth_failure_window{300'000};
};

// Builds the configuration from the current flag values. On error returns a message such as
// "--listen: bad port 'x' in '127.0.0.1:x'".
Expected<GatewayConfig, std::string> from_flags();

// Re-reads --flagfile (if one was given) into the flags and rebuilds the configuration.
// Returns an error message and changes nothing when the file or a value is bad.
Expected<GatewayConfig, std::string> reload_flags(const char* argv0);

}  // namespace mailgate::config
