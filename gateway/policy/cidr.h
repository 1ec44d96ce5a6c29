// policy/cidr.h — IP prefixes ("192.0.2.0/24", "2001:db8::/32") and a longest-prefix-match
// table over them.
// Owns: parsing and printing prefixes, and PrefixTable, a binary trie per address family.
//
// Why a binary trie: policy tables are small (tens to thousands of entries) and built once per
// snapshot; a one-bit-per-level trie is short, obviously correct, and answers a lookup in at
// most 32 (IPv4) or 128 (IPv6) steps over a contiguous node vector, with no allocation.
// Each node holds two child indexes and the value index of a prefix ending there; a lookup
// walks the address's bits and remembers the last node carrying a value: that is the longest
// matching prefix. /0 is the root node itself.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, as seen on dual-stack sockets) are looked up as
// the IPv4 address they carry; prefixes inside ::ffff:0:0/96 are refused at parse time so the
// same network cannot be written two ways.
// Threading: a built PrefixTable is immutable and safe to read from any number of threads.
// Must not touch: what the values mean (the snapshot owns the rules they index).
#pragma once

#include <array>
#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace mailgate::policy {

struct IpPrefix {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network address; IPv4 uses bytes[0..3]
  int length = 0;                   // 0..32 or 0..128

  // Canonical text: "10.0.0.0/8", "2001:db8::/32"; a full-length prefix prints with its /32
  // or /128 (use address_text() for the bare address).
  std::string to_string() const;
  std::string address_text() const;
  bool operator==(const IpPrefix&) const = default;
};

// Parses "ADDRESS" (a host: /32 or /128) or "ADDRESS/LEN". Refuses: anything asio's strict
// parser refuses (no octal, no shortened IPv4, no zone ids), a length out of range or with
// sign/leading zeros, set host bits ("host bits set in '10.0.0.1/8'; did you mean
// '10.0.0.0/8'?") and IPv4-mapped IPv6 prefixes. Errors quote the input: "bad CIDR '...': why".
Expected<IpPrefix, std::string> parse_prefix(std::string_view text);

// Parses a bare address (no prefix length). Unmaps ::ffff:a.b.c.d to IPv4.
std::optional<asio::ip::address> parse_address(std::string_view text);

class PrefixTable {
 public:
  struct Match {
    uint32_t value;  // what insert() stored
    int length;      // prefix length that matched
  };

  // Adds `prefix` -> `value`. When the same prefix is already present, nothing changes and
  // the existing value is returned (the caller reports the duplicate).
  std::optional<uint32_t> insert(const IpPrefix& prefix, uint32_t value);

  // Longest prefix containing `address` (IPv4-mapped IPv6 is looked up as IPv4).
  std::optional<Match> lookup(const asio::ip::address& address) const;

  size_t size() const { return size_; }

 private:
  struct Node {
    int32_t child[2] = {-1, -1};
    int64_t value = -1;  // -1: no prefix ends here
  };
  struct Trie {
    std::vector<Node> nodes;  // nodes[0] is the root (/0) once anything was inserted
  };
  static std::optional<Match> walk(const Trie& trie, const uint8_t* bytes, int bits);

  Trie v4_;
  Trie v6_;
  size_t size_ = 0;
};

}  // namespace mailgate::policy
