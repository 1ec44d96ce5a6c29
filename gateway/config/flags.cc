// config/flags.cc — the gflags of the mailgate daemon and their validation. See config.h.
#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "config/config.h"
#include "config/endpoint.h"

DEFINE_string(listen, "127.0.0.1:2525=inbound",
              "Listeners, comma-separated ADDR:PORT[=PROFILE] (IPv6 as [ADDR]:PORT). Port 0 "
              "picks a free port. The profile names the listener's policy (inbound, "
              "submission, ...)");
DEFINE_string(backend, "127.0.0.1:10025", "Backend MTA as HOST:PORT");
DEFINE_string(hostname, "", "Name in the greeting, EHLO and Received (default: gethostname)");
DEFINE_uint64(max_connections, 1000, "Simultaneous client connections in total");
DEFINE_uint64(max_connections_per_ip, 20, "Simultaneous client connections per client address");
DEFINE_uint64(max_message_size, 52428800, "Largest message accepted, in bytes (SIZE)");
DEFINE_uint64(max_recipients, 100, "Recipients accepted per message");
DEFINE_uint64(max_errors, 20, "Error replies in one session before 421 and disconnect");
DEFINE_double(greet_pause, 0, "Seconds to wait before the greeting; a client that sends anything "
              "before it is refused (554 5.5.1) as an early talker (0: no wait, but data sent "
              "during the CONNECT plugins is still caught)");
DEFINE_double(client_timeout, 300, "Seconds to wait for a client command or data (RFC 5321 "
              "§4.5.3.2.7)");
DEFINE_double(backend_connect_timeout, 30, "Seconds to connect to the backend");
DEFINE_double(backend_greeting_timeout, 300, "Seconds to wait for the backend's 220");
DEFINE_double(backend_command_timeout, 300, "Seconds to wait for the backend's reply to "
              "EHLO, XCLIENT, MAIL, RCPT, RSET");
DEFINE_double(backend_data_init_timeout, 120, "Seconds to wait for the backend's 354");
DEFINE_double(backend_data_block_timeout, 180, "Seconds for each block of data to the backend");
DEFINE_double(backend_data_end_timeout, 600, "Seconds to wait for the backend's reply to the "
              "final dot");
DEFINE_uint64(backend_pool_size, 32, "Idle backend connections kept per I/O thread");
DEFINE_double(backend_pool_idle_timeout, 60, "Seconds an idle backend connection is kept");
DEFINE_bool(xclient, true, "Pass the real client to the backend with XCLIENT when offered");
DEFINE_bool(xforward, true, "Pass the real client with XFORWARD when offered (and no XCLIENT)");
DEFINE_string(backend_starttls, "off", "STARTTLS to the backend: 'off', or 'opportunistic' (used "
              "when the backend offers it; no certificate check)");
DEFINE_double(shutdown_grace, 30, "Seconds open sessions get to finish after SIGTERM");
DEFINE_string(spool_dir, "/var/spool/mailgate", "Directory for messages too large for memory");
DEFINE_uint64(spool_memory_limit, 1048576, "Bytes of one message kept in memory before "
              "spilling to the spool directory");
DEFINE_string(bare_eol, "reject", "Bare CR or LF in commands and data: 'reject' (refuse the "
              "command or message) or 'normalize' (treat as CRLF)");
DEFINE_string(log_level, "info", "debug, info, warning or error");
DEFINE_uint32(threads, 0, "I/O threads (0 = one per core)");
DEFINE_string(policy_db, "/var/lib/mailgate/policy.db",
              "SQLite policy database (created with the current schema when missing); edits "
              "apply live");
DEFINE_string(plugin_dir, MAILGATE_DEFAULT_PLUGIN_DIR,
              "Directory that relative plugin paths in the policy database are resolved in");
DEFINE_uint32(plugin_threads, 0, "Worker threads for blocking plugins (0 = 2 per core)");
DEFINE_uint32(plugin_queue, 1024, "Plugin calls that may wait for a worker before the "
              "plugins' fail modes apply");
DEFINE_string(tls_cert, "", "PEM certificate chain (leaf first) for STARTTLS and implicit TLS; "
              "re-read on SIGHUP (open sessions keep the old one). Empty: no TLS offered");
DEFINE_string(tls_key, "", "PEM private key of --tls_cert; re-read on SIGHUP");
DEFINE_string(smtps_profiles, "smtps,submissions", "Listener profiles that speak TLS from the "
              "first byte (implicit TLS, port 465, RFC 8314) instead of offering STARTTLS");
DEFINE_string(submission_profiles, "submission,smtps,submissions", "Listener profiles for mail "
              "clients: AUTH is offered only under TLS, checked by the backend, and required "
              "before MAIL");
DEFINE_uint32(auth_max_failures, 5, "Failed AUTH attempts per client address within "
              "--auth_failure_window before AUTH is refused (421 4.7.0); 0 = no limit");
DEFINE_double(auth_failure_window, 300, "Seconds over which --auth_max_failures counts");
DEFINE_uint32(policy_poll_ms, 1000, "How often the policy database is checked for edits (ms)");

namespace mailgate::config {
namespace {

std::string flag_error(const char* flag, const std::string& message) {
  return std::string("--") + flag + ": " + message;
}

Expected<std::chrono::milliseconds, std::string> seconds_flag(const char* flag, double value) {
  if (!(value > 0) || !std::isfinite(value) || value > 86400.0 * 7)
    return unexpected(flag_error(flag, "must be a number of seconds > 0 and <= 604800"));
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(value * 1000)));
}

// "a,b,c" -> {"a","b","c"}; empty items are skipped.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

bool listed(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

Expected<std::vector<ListenerSpec>, std::string> parse_listeners(const std::string& text) {
  std::vector<ListenerSpec> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                      : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) return unexpected(flag_error("listen", "empty listener in '" + text + "'"));
    ListenerSpec spec;
    spec.text = item;
    size_t eq = item.find('=');
    if (eq != std::string::npos) {
      spec.profile = item.substr(eq + 1);
      item.resize(eq);
      if (spec.profile.empty() ||
          spec.profile.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
              std::string::npos)
        return unexpected(flag_error(
            "listen", "bad profile name in '" + spec.text + "' (want [a-z0-9_-]+)"));
    }
    auto hp = parse_host_port(item, /*allow_zero=*/true);
    if (!hp) return unexpected(flag_error("listen", hp.error()));
    std::error_code ec;
    asio::ip::address addr = asio::ip::make_address(hp->host, ec);
    if (ec)
      return unexpected(flag_error("listen", "'" + hp->host +
                                                 "' is not an IP address (listeners take "
                                                 "numeric addresses)"));
    spec.endpoint = asio::ip::tcp::endpoint(addr, hp->port);
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace

Expected<GatewayConfig, std::string> from_flags() {
  GatewayConfig c;
  auto listeners = parse_listeners(FLAGS_listen);
  if (!listeners) return unexpected(listeners.error());
  c.listeners = std::move(*listeners);
  const std::vector<std::string> smtps = split_list(FLAGS_smtps_profiles);
  const std::vector<std::string> submission = split_list(FLAGS_submission_profiles);
  c.tls_cert = FLAGS_tls_cert;
  c.tls_key = FLAGS_tls_key;
  if (c.tls_cert.empty() != c.tls_key.empty())
    return unexpected(flag_error(c.tls_cert.empty() ? "tls_cert" : "tls_key",
                                 "--tls_cert and --tls_key go together"));
  for (ListenerSpec& l : c.listeners) {
    l.implicit_tls = listed(smtps, l.profile);
    l.submission = listed(submission, l.profile);
    if (l.implicit_tls && c.tls_cert.empty())
      return unexpected(flag_error("listen", "'" + l.text + "': profile " + l.profile +
                                                 " is in --smtps_profiles (implicit TLS) but "
                                                 "--tls_cert and --tls_key are not set"));
  }
  if (!(FLAGS_auth_failure_window > 0) || FLAGS_auth_failure_window > 86400)
    return unexpected(flag_error("auth_failure_window", "must be between 0 and 86400 seconds"));
  c.auth_max_failures = FLAGS_auth_max_failures;
  c.auth_failure_window =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(FLAGS_auth_failure_window * 1000)));

  auto backend = parse_host_port(FLAGS_backend, /*allow_zero=*/false);
  if (!backend) return unexpected(flag_error("backend", backend.error()));
  c.relay.host = backend->host;
  c.relay.port = backend->port;

  std::string hostname = FLAGS_hostname;
  if (hostname.empty()) {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) std::snprintf(buf, sizeof buf, "localhost");
    hostname = buf;
  }
  if (hostname.find_first_of(" \t\r\n") != std::string::npos)
    return unexpected(flag_error("hostname", "must not contain white space"));
  c.session.hostname = hostname;
  c.relay.helo_name = hostname;

  if (FLAGS_max_connections == 0) return unexpected(flag_error("max_connections", "must be > 0"));
  if (FLAGS_max_connections_per_ip == 0)
    return unexpected(flag_error("max_connections_per_ip", "must be > 0"));
  c.max_connections = FLAGS_max_connections;
  c.max_connections_per_ip = FLAGS_max_connections_per_ip;
  if (FLAGS_max_message_size < 1024)
    return unexpected(flag_error("max_message_size", "must be at least 1024 bytes"));
  c.session.max_message_size = FLAGS_max_message_size;
  if (FLAGS_max_recipients == 0) return unexpected(flag_error("max_recipients", "must be > 0"));
  c.session.max_recipients = FLAGS_max_recipients;
  if (FLAGS_max_errors == 0) return unexpected(flag_error("max_errors", "must be > 0"));
  c.session.max_errors = FLAGS_max_errors;

  struct TimeoutFlag {
    const char* name;
    double value;
    std::chrono::milliseconds* target;
  };
  const TimeoutFlag timeouts[] = {
      {"client_timeout", FLAGS_client_timeout, &c.session.client_timeout},
      {"backend_connect_timeout", FLAGS_backend_connect_timeout, &c.relay.connect_timeout},
      {"backend_greeting_timeout", FLAGS_backend_greeting_timeout, &c.relay.greeting_timeout},
      {"backend_command_timeout", FLAGS_backend_command_timeout, &c.relay.command_timeout},
      {"backend_data_init_timeout", FLAGS_backend_data_init_timeout, &c.relay.data_init_timeout},
      {"backend_data_block_timeout", FLAGS_backend_data_block_timeout,
       &c.relay.data_block_timeout},
      {"backend_data_end_timeout", FLAGS_backend_data_end_timeout, &c.relay.data_end_timeout},
      {"backend_pool_idle_timeout", FLAGS_backend_pool_idle_timeout, &c.relay.pool_idle_timeout},
  };
  for (const TimeoutFlag& t : timeouts) {
    auto ms = seconds_flag(t.name, t.value);
    if (!ms) return unexpected(ms.error());
    *t.target = *ms;
  }
  if (!(FLAGS_greet_pause >= 0) || FLAGS_greet_pause > 60)
    return unexpected(flag_error("greet_pause", "must be a number of seconds from 0 to 60"));
  c.session.greet_pause =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(FLAGS_greet_pause * 1000)));
  c.relay.pool_max_idle = FLAGS_backend_pool_size;
  c.relay.use_xclient = FLAGS_xclient;
  c.relay.use_xforward = FLAGS_xforward;
  if (FLAGS_backend_starttls == "opportunistic") {
    c.relay.starttls = true;
  } else if (FLAGS_backend_starttls != "off") {
    return unexpected(flag_error("backend_starttls", "must be 'off' or 'opportunistic', not '" +
                                                         FLAGS_backend_starttls + "'"));
  }

  if (!(FLAGS_shutdown_grace >= 0) || FLAGS_shutdown_grace > 3600)
    return unexpected(flag_error("shutdown_grace", "must be between 0 and 3600 seconds"));
  c.shutdown_grace_seconds = FLAGS_shutdown_grace;

  if (FLAGS_spool_dir.empty()) return unexpected(flag_error("spool_dir", "must not be empty"));
  c.session.spool_dir = FLAGS_spool_dir;
  c.session.spool_memory_limit = FLAGS_spool_memory_limit;

  if (FLAGS_bare_eol == "reject") {
    c.session.bare_eol = smtp::BareEolPolicy::kReject;
  } else if (FLAGS_bare_eol == "normalize") {
    c.session.bare_eol = smtp::BareEolPolicy::kNormalize;
  } else {
    return unexpected(flag_error("bare_eol", "must be 'reject' or 'normalize', not '" +
                                                 FLAGS_bare_eol + "'"));
  }
  if (!log::parse_level(FLAGS_log_level, &c.log_level))
    return unexpected(flag_error("log_level", "must be debug, info, warning or error, not '" +
                                                  FLAGS_log_level + "'"));
  c.threads = FLAGS_threads;
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.threads > 256) return unexpected(flag_error("threads", "must be <= 256"));
  c.flagfile = gflags::GetCommandLineFlagInfoOrDie("flagfile").current_value;
  if (FLAGS_policy_db.empty()) return unexpected(flag_error("policy_db", "must not be empty"));
  c.policy_db = FLAGS_policy_db;
  c.plugin_dir = FLAGS_plugin_dir;
  c.plugin_threads = FLAGS_plugin_threads != 0 ? FLAGS_plugin_threads
                                               : 2 * std::max(1u, std::thread::hardware_concurrency());
  if (c.plugin_threads > 1024) return unexpected(flag_error("plugin_threads", "must be <= 1024"));
  if (FLAGS_plugin_queue == 0) return unexpected(flag_error("plugin_queue", "must be > 0"));
  c.plugin_queue = FLAGS_plugin_queue;
  if (FLAGS_policy_poll_ms < 10 || FLAGS_policy_poll_ms > 3'600'000)
    return unexpected(flag_error("policy_poll_ms", "must be between 10 and 3600000"));
  c.policy_poll = std::chrono::milliseconds(FLAGS_policy_poll_ms);
  return c;
}

Expected<GatewayConfig, std::string> reload_flags(const char* argv0) {
  std::string flagfile = gflags::GetCommandLineFlagInfoOrDie("flagfile").current_value;
  if (flagfile.empty()) return from_flags();
  std::vector<gflags::CommandLineFlagInfo> before;
  gflags::GetAllFlags(&before);
  auto restore = [&] {
    for (const auto& f : before) gflags::SetCommandLineOption(f.name.c_str(), f.current_value.c_str());
  };
  if (!gflags::ReadFromFlagsFile(flagfile, argv0, /*errors_are_fatal=*/false)) {
    restore();
    return unexpected("--flagfile: cannot read or parse " + flagfile);
  }
  auto c = from_flags();
  if (!c) restore();
  return c;
}

}  // namespace mailgate::config
