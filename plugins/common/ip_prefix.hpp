// plugins/common/ip_prefix.hpp — client networks for the built-in plugins that count or
// remember clients per network (ratelimit, greylist): an address masked to a prefix length,
// printed canonically ("192.0.2.0/24", "2001:db8:1:2::/64"), and a small CIDR list matcher for
// settings such as exempt networks. IPv4-mapped IPv6 (::ffff:a.b.c.d) is treated as IPv4.
// Header-only; POSIX inet_pton/inet_ntop only. Threading: pure functions and immutable lists.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::plugins {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in bytes[0..3]
};

inline std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  static const std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), kMapped, 12) == 0) {
    std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
    std::memset(a.bytes.data() + 4, 0, 12);
    return a;
  }
  a.v6 = true;
  return a;
}

// `a` with every bit after the first `bits` cleared (bits clamped to the family's width).
inline IpAddress mask(IpAddress a, int bits) {
  const int width = a.v6 ? 128 : 32;
  if (bits < 0) bits = 0;
  if (bits > width) bits = width;
  for (int i = 0; i < width / 8; ++i) {
    const int keep = bits - i * 8;
    if (keep >= 8) continue;
    a.bytes[static_cast<std::size_t>(i)] &=
        keep <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - keep));
  }
  return a;
}

inline std::string to_text(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof(buf));
  return buf;
}

// "192.0.2.0/24" for ("192.0.2.77", 24, 64); nullopt when `address` is not an IP address.
inline std::optional<std::string> client_network(std::string_view address, int ipv4_bits,
                                                 int ipv6_bits) {
  auto a = parse_ip(address);
  if (!a) return std::nullopt;
  const int bits = a->v6 ? ipv6_bits : ipv4_bits;
  return to_text(mask(*a, bits)) + "/" + std::to_string(bits < 0 ? 0 : bits);
}

// A list of networks ("10.0.0.0/8", "2001:db8::/32", or bare addresses).
class NetworkList {
 public:
  // Throws std::invalid_argument naming the entry when one is not an IP or CIDR.
  void add(std::string_view cidr) {
    const std::size_t slash = cidr.find('/');
    auto a = parse_ip(cidr.substr(0, slash));
    if (!a) throw std::invalid_argument("'" + std::string(cidr) + "' is not an IP address or CIDR");
    const int width = a->v6 ? 128 : 32;
    int bits = width;
    if (slash != std::string_view::npos) {
      const std::string_view len = cidr.substr(slash + 1);
      if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != len.npos)
        throw std::invalid_argument("'" + std::string(cidr) + "' has a bad prefix length");
      bits = std::stoi(std::string(len));
      if (bits > width)
        throw std::invalid_argument("'" + std::string(cidr) + "': prefix length over " +
                                    std::to_string(width));
    }
    entries_.push_back(Entry{mask(*a, bits), bits});
  }
  bool contains(std::string_view address) const {
    auto a = parse_ip(address);
    if (!a) return false;
    for (const Entry& e : entries_)
      if (e.network.v6 == a->v6 && mask(*a, e.bits).bytes == e.network.bytes) return true;
    return false;
  }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    IpAddress network;
    int bits;
  };
  std::vector<Entry> entries_;
};

}  // namespace mailgate::plugins
