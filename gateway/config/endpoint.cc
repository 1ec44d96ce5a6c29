// config/endpoint.cc — see endpoint.h.
#include "config/endpoint.h"

#include <charconv>

namespace mailgate::config {

Expected<HostPort, std::string> parse_host_port(std::string_view text, bool allow_zero) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos)
      return unexpected("missing ']' in '" + std::string(text) + "'");
    hp.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return unexpected("missing port in '" + std::string(text) + "' (want [ADDR]:PORT)");
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return unexpected("missing port in '" + std::string(text) + "' (want ADDR:PORT)");
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos)
      return unexpected("IPv6 address in '" + std::string(text) + "' needs brackets: [ADDR]:PORT");
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty()) return unexpected("missing address in '" + std::string(text) + "'");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      value > 65535 || (value == 0 && !allow_zero))
    return unexpected("bad port '" + std::string(port_text) + "' in '" + std::string(text) + "'");
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

}  // namespace mailgate::config
