// config/milter_flags.cc — the milter-mode flags. See milter_flags.h.
#include "config/milter_flags.h"

#include <gflags/gflags.h>

#include <cctype>

DEFINE_string(mode, "proxy",
              "proxy: SMTP gateway in front of --backend; milter: a filter inside Postfix or "
              "Sendmail (libmilter) on --milter_socket");
DEFINE_string(milter_socket, "inet:8891@127.0.0.1",
              "Milter mode: where the MTA connects, inet:PORT@HOST, inet6:PORT@HOST or "
              "unix:PATH (Postfix: smtpd_milters = inet:HOST:PORT or unix:PATH)");
DEFINE_string(milter_profile, "inbound",
              "Milter mode: the policy profile whose plugins run (rows with that profile or "
              "'*')");
DEFINE_string(milter_socket_mode, "",
              "Milter mode with a unix socket: its permission bits in octal, e.g. 0660 (the "
              "MTA's user must be able to write to it); empty leaves what the umask gives");
DEFINE_int32(milter_timeout, 7210,
             "Milter mode: seconds libmilter waits for the MTA before dropping the connection");

namespace mailgate::config {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Same rule as a --listen profile.
bool valid_profile(const std::string& p) {
  return !p.empty() &&
         p.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

}  // namespace

std::string check_milter_socket(const std::string& spec) {
  size_t colon = spec.find(':');
  if (colon == std::string::npos || colon == 0)
    return "want inet:PORT@HOST, inet6:PORT@HOST or unix:PATH, not '" + spec + "'";
  std::string kind = spec.substr(0, colon);
  std::string rest = spec.substr(colon + 1);
  if (kind == "unix" || kind == "local") {
    if (rest.empty() || rest[0] != '/') return "'" + spec + "': the socket path must be absolute";
    return {};
  }
  if (kind == "inet" || kind == "inet6") {
    size_t at = rest.find('@');
    std::string port = rest.substr(0, at);
    if (!all_digits(port) || std::stoul(port.substr(0, 6)) > 65535)
      return "'" + spec + "': bad port '" + port + "'";
    if (at != std::string::npos && at + 1 == rest.size())
      return "'" + spec + "': empty host after '@'";
    return {};
  }
  return "'" + spec + "': unknown socket type '" + kind + "' (inet, inet6 or unix)";
}

Expected<Mode, std::string> mode_from_flags() {
  if (FLAGS_mode == "proxy") return Mode::kProxy;
  if (FLAGS_mode == "milter") return Mode::kMilter;
  return unexpected("--mode: want 'proxy' or 'milter', not '" + FLAGS_mode + "'");
}

Expected<MilterConfig, std::string> milter_config_from_flags() {
  MilterConfig c;
  std::string bad = check_milter_socket(FLAGS_milter_socket);
  if (!bad.empty()) return unexpected("--milter_socket: " + bad);
  c.socket = FLAGS_milter_socket;
  if (!valid_profile(FLAGS_milter_profile))
    return unexpected("--milter_profile: bad profile name '" + FLAGS_milter_profile +
                      "' (want [a-z0-9_-]+)");
  c.profile = FLAGS_milter_profile;
  if (FLAGS_milter_timeout <= 0)
    return unexpected("--milter_timeout: must be a positive number of seconds, not " +
                      std::to_string(FLAGS_milter_timeout));
  c.timeout_seconds = FLAGS_milter_timeout;
  if (!FLAGS_milter_socket_mode.empty()) {
    const std::string& m = FLAGS_milter_socket_mode;
    if (m.size() > 4 || m.find_first_not_of("01234567") != std::string::npos)
      return unexpected("--milter_socket_mode: want octal permission bits such as 0660, not '" + m +
                        "'");
    if (c.socket.rfind("unix:", 0) != 0 && c.socket.rfind("local:", 0) != 0)
      return unexpected("--milter_socket_mode: only for a unix: socket, not '" + c.socket + "'");
    c.socket_mode = std::stoi(m, nullptr, 8);
  }
  return c;
}

}  // namespace mailgate::config
