// dns/names.cc — reverse-lookup names and query-name checks. See names.h.
#include "dns/names.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

namespace mailgate::dns {
namespace {

std::string in_addr_arpa(const uint8_t* octets) {
  std::string out;
  for (int i = 3; i >= 0; --i) {
    out += std::to_string(octets[i]);
    out += '.';
  }
  return out + "in-addr.arpa";
}

}  // namespace

Expected<std::string, std::string> ptr_name(std::string_view address) {
  // inet_pton wants a NUL-terminated string; addresses are short, anything longer is wrong.
  if (address.empty() || address.size() >= INET6_ADDRSTRLEN)
    return unexpected("'" + std::string(address) + "' is not an IP address");
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, address.data(), address.size());
  uint8_t v4[4];
  if (inet_pton(AF_INET, text, v4) == 1) return in_addr_arpa(v4);
  uint8_t v6[16];
  if (inet_pton(AF_INET6, text, v6) != 1)
    return unexpected("'" + std::string(address) + "' is not an IP address");
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6, kMappedPrefix, sizeof kMappedPrefix) == 0) return in_addr_arpa(v6 + 12);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64 + 8);
  for (int i = 15; i >= 0; --i) {
    out += kHex[v6[i] & 0xf];
    out += '.';
    out += kHex[v6[i] >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

std::optional<std::string> check_query_name(std::string_view name) {
  if (name.empty()) return "empty name";
  std::string_view body = name;
  if (body != "." && body.back() == '.') body.remove_suffix(1);
  if (body == ".") return std::nullopt;  // the root
  if (body.size() > 253) return "name longer than 253 characters";
  size_t label = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i == body.size() || body[i] == '.') {
      if (label == 0) return "empty label in '" + std::string(name) + "'";
      label = 0;
      continue;
    }
    const auto c = static_cast<unsigned char>(body[i]);
    if (c <= 0x20 || c == 0x7f) return "white space or control character in name";
    if (c == '\\') return "escapes are not accepted in names";
    if (++label > 63) return "label longer than 63 characters";
  }
  return std::nullopt;
}

}  // namespace mailgate::dns
