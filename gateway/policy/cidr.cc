// policy/cidr.cc — IP prefix parsing and the longest-prefix-match trie. See cidr.h.
#include "policy/cidr.h"

#include <fmt/format.h>

namespace mailgate::policy {
namespace {

bool bit_at(const uint8_t* bytes, int i) { return (bytes[i / 8] >> (7 - i % 8)) & 1; }

bool is_v4_mapped(const std::array<uint8_t, 16>& b) {
  for (int i = 0; i < 10; ++i) {
    if (b[i] != 0) return false;
  }
  return b[10] == 0xff && b[11] == 0xff;
}

}  // namespace

std::string IpPrefix::address_text() const {
  if (!v6) {
    return asio::ip::address_v4(
               asio::ip::address_v4::bytes_type{bytes[0], bytes[1], bytes[2], bytes[3]})
        .to_string();
  }
  return asio::ip::address_v6(bytes).to_string();
}

std::string IpPrefix::to_string() const { return fmt::format("{}/{}", address_text(), length); }

std::optional<asio::ip::address> parse_address(std::string_view text) {
  if (text.empty() || text.find('%') != std::string_view::npos) return std::nullopt;
  asio::error_code ec;
  asio::ip::address a = asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
  }
  return a;
}

Expected<IpPrefix, std::string> parse_prefix(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return unexpected(fmt::format("bad CIDR '{}': {}", text, why));
  };
  std::string_view addr_text = text;
  std::optional<int> length;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    std::string_view len_text = text.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3) return bad("prefix length must be a number");
    int n = 0;
    for (char c : len_text) {
      if (c < '0' || c > '9') return bad("prefix length must be a number");
      n = n * 10 + (c - '0');
    }
    if (len_text.size() > 1 && len_text[0] == '0') return bad("prefix length has a leading zero");
    length = n;
  }
  if (addr_text.empty()) return bad("missing address");
  if (addr_text.find('%') != std::string_view::npos) return bad("zone ids are not allowed");
  asio::error_code ec;
  asio::ip::address a = asio::ip::make_address(std::string(addr_text), ec);
  if (ec) return bad("not an IPv4 or IPv6 address");

  IpPrefix p;
  p.v6 = a.is_v6();
  if (p.v6) {
    p.bytes = a.to_v6().to_bytes();
    if (is_v4_mapped(p.bytes))
      return bad("IPv4-mapped IPv6 networks are not allowed; use the IPv4 form");
  } else {
    auto b4 = a.to_v4().to_bytes();
    std::copy(b4.begin(), b4.end(), p.bytes.begin());
  }
  const int max = p.v6 ? 128 : 32;
  p.length = length.value_or(max);
  if (p.length > max) return bad(fmt::format("prefix length must be 0..{}", max));

  IpPrefix masked = p;
  for (int i = p.length; i < max; ++i)
    masked.bytes[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  if (masked.bytes != p.bytes) {
    return unexpected(
        fmt::format("bad CIDR '{}': host bits set; did you mean '{}'?", text, masked.to_string()));
  }
  return p;
}

std::optional<uint32_t> PrefixTable::insert(const IpPrefix& prefix, uint32_t value) {
  Trie& trie = prefix.v6 ? v6_ : v4_;
  if (trie.nodes.empty()) trie.nodes.emplace_back();
  int32_t node = 0;
  for (int i = 0; i < prefix.length; ++i) {
    int b = bit_at(prefix.bytes.data(), i);
    if (trie.nodes[node].child[b] < 0) {
      trie.nodes[node].child[b] = static_cast<int32_t>(trie.nodes.size());
      trie.nodes.emplace_back();  // invalidates references: index again below
    }
    node = trie.nodes[node].child[b];
  }
  if (trie.nodes[node].value >= 0) return static_cast<uint32_t>(trie.nodes[node].value);
  trie.nodes[node].value = value;
  ++size_;
  return std::nullopt;
}

std::optional<PrefixTable::Match> PrefixTable::walk(const Trie& trie, const uint8_t* bytes,
                                                    int bits) {
  if (trie.nodes.empty()) return std::nullopt;
  std::optional<Match> best;
  int32_t node = 0;
  for (int depth = 0;; ++depth) {
    const Node& n = trie.nodes[node];
    if (n.value >= 0) best = Match{static_cast<uint32_t>(n.value), depth};
    if (depth == bits) break;
    node = n.child[bit_at(bytes, depth)];
    if (node < 0) break;
  }
  return best;
}

std::optional<PrefixTable::Match> PrefixTable::lookup(const asio::ip::address& address) const {
  if (address.is_v4()) {
    auto b = address.to_v4().to_bytes();
    return walk(v4_, b.data(), 32);
  }
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    auto b = asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_bytes();
    return walk(v4_, b.data(), 32);
  }
  auto b = v6.to_bytes();
  return walk(v6_, b.data(), 128);
}

}  // namespace mailgate::policy
