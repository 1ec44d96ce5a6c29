// tests/unit/policy/cidr_test.cc — IP prefix parsing and the longest-prefix-match trie
// (gateway/policy/cidr.h): IPv4 and IPv6, /0, host routes, nesting, duplicates, v4-mapped.
#include "policy/cidr.h"

#include <gtest/gtest.h>

namespace mailgate::policy {
namespace {

asio::ip::address addr(const char* text) { return asio::ip::make_address(text); }

IpPrefix prefix(const char* text) {
  auto p = parse_prefix(text);
  EXPECT_TRUE(p) << p.error();
  return *p;
}

TEST(ParsePrefix, AcceptsNetworksAndHosts) {
  EXPECT_EQ(prefix("10.0.0.0/8").to_string(), "10.0.0.0/8");
  EXPECT_EQ(prefix("192.0.2.7").to_string(), "192.0.2.7/32");
  EXPECT_EQ(prefix("0.0.0.0/0").to_string(), "0.0.0.0/0");
  EXPECT_EQ(prefix("2001:DB8::/32").to_string(), "2001:db8::/32");
  EXPECT_EQ(prefix("::/0").to_string(), "::/0");
  EXPECT_EQ(prefix("2001:db8::1").to_string(), "2001:db8::1/128");
  EXPECT_EQ(prefix("2001:db8::1").length, 128);
  EXPECT_EQ(prefix("192.0.2.7").address_text(), "192.0.2.7");
  EXPECT_EQ(prefix("10.0.0.0/8"), prefix("10.0.0.0/8"));
  EXPECT_EQ(prefix("10.0.0.1"), prefix("10.0.0.1/32"));
}

TEST(ParsePrefix, RefusesWithReasons) {
  auto error = [](const char* text) {
    auto p = parse_prefix(text);
    EXPECT_FALSE(p) << text;
    return p ? std::string() : p.error();
  };
  EXPECT_EQ(error("10.0.0.0/33"), "bad CIDR '10.0.0.0/33': prefix length must be 0..32");
  EXPECT_EQ(error("2001:db8::/129"), "bad CIDR '2001:db8::/129': prefix length must be 0..128");
  EXPECT_EQ(error("10.0.0.1/8"),
            "bad CIDR '10.0.0.1/8': host bits set; did you mean '10.0.0.0/8'?");
  EXPECT_EQ(error("2001:db8::1/32"),
            "bad CIDR '2001:db8::1/32': host bits set; did you mean '2001:db8::/32'?");
  EXPECT_EQ(error("10.0.0.0/"), "bad CIDR '10.0.0.0/': prefix length must be a number");
  EXPECT_EQ(error("10.0.0.0/x"), "bad CIDR '10.0.0.0/x': prefix length must be a number");
  EXPECT_EQ(error("10.0.0.0/+8"), "bad CIDR '10.0.0.0/+8': prefix length must be a number");
  EXPECT_EQ(error("10.0.0.0/08"), "bad CIDR '10.0.0.0/08': prefix length has a leading zero");
  EXPECT_EQ(error("/8"), "bad CIDR '/8': missing address");
  EXPECT_EQ(error(""), "bad CIDR '': missing address");
  EXPECT_EQ(error("10.0.0"), "bad CIDR '10.0.0': not an IPv4 or IPv6 address");
  EXPECT_EQ(error("010.0.0.1"), "bad CIDR '010.0.0.1': not an IPv4 or IPv6 address");
  EXPECT_EQ(error("example.com"), "bad CIDR 'example.com': not an IPv4 or IPv6 address");
  EXPECT_EQ(error(" 10.0.0.1"), "bad CIDR ' 10.0.0.1': not an IPv4 or IPv6 address");
  EXPECT_EQ(error("fe80::1%eth0"), "bad CIDR 'fe80::1%eth0': zone ids are not allowed");
  EXPECT_EQ(error("::ffff:10.0.0.0/104"),
            "bad CIDR '::ffff:10.0.0.0/104': IPv4-mapped IPv6 networks are not allowed; use the "
            "IPv4 form");
}

TEST(ParseAddress, UnmapsV4MappedAndRefusesJunk) {
  EXPECT_EQ(parse_address("::ffff:192.0.2.1"), addr("192.0.2.1"));
  EXPECT_EQ(parse_address("2001:db8::1"), addr("2001:db8::1"));
  EXPECT_FALSE(parse_address(""));
  EXPECT_FALSE(parse_address("10.0.0.0/8"));
  EXPECT_FALSE(parse_address("fe80::1%1"));
  EXPECT_FALSE(parse_address("host.example"));
}

TEST(PrefixTable, EmptyTableMatchesNothing) {
  PrefixTable t;
  EXPECT_FALSE(t.lookup(addr("10.0.0.1")));
  EXPECT_FALSE(t.lookup(addr("::1")));
  EXPECT_EQ(t.size(), 0u);
}

TEST(PrefixTable, LongestPrefixWinsIPv4) {
  PrefixTable t;
  EXPECT_FALSE(t.insert(prefix("0.0.0.0/0"), 0));
  EXPECT_FALSE(t.insert(prefix("10.0.0.0/8"), 1));
  EXPECT_FALSE(t.insert(prefix("10.1.0.0/16"), 2));
  EXPECT_FALSE(t.insert(prefix("10.1.2.3/32"), 3));
  EXPECT_FALSE(t.insert(prefix("10.1.2.0/24"), 4));  // inserted after its more specific child

  auto match = [&](const char* a) { return t.lookup(addr(a)); };
  EXPECT_EQ(match("10.1.2.3")->value, 3u);
  EXPECT_EQ(match("10.1.2.3")->length, 32);
  EXPECT_EQ(match("10.1.2.4")->value, 4u);
  EXPECT_EQ(match("10.1.3.4")->value, 2u);
  EXPECT_EQ(match("10.2.0.1")->value, 1u);
  EXPECT_EQ(match("11.0.0.1")->value, 0u);
  EXPECT_EQ(match("11.0.0.1")->length, 0);
  EXPECT_EQ(match("255.255.255.255")->value, 0u);
  EXPECT_FALSE(match("2001:db8::1"));  // /0 of IPv4 does not cover IPv6
  EXPECT_EQ(t.size(), 5u);
}

TEST(PrefixTable, LongestPrefixWinsIPv6) {
  PrefixTable t;
  t.insert(prefix("::/0"), 0);
  t.insert(prefix("2001:db8::/32"), 1);
  t.insert(prefix("2001:db8:1::/48"), 2);
  t.insert(prefix("2001:db8:1::1"), 3);
  t.insert(prefix("2001:db8:1::/127"), 4);
  auto match = [&](const char* a) { return t.lookup(addr(a)); };
  EXPECT_EQ(match("2001:db8:1::1")->value, 3u);
  EXPECT_EQ(match("2001:db8:1::1")->length, 128);
  EXPECT_EQ(match("2001:db8:1::")->value, 4u);
  EXPECT_EQ(match("2001:db8:1::2")->value, 2u);
  EXPECT_EQ(match("2001:db8:2::1")->value, 1u);
  EXPECT_EQ(match("2001:db9::1")->value, 0u);
  EXPECT_EQ(match("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")->value, 0u);
  EXPECT_FALSE(match("192.0.2.1"));  // ::/0 does not cover IPv4
}

TEST(PrefixTable, HostRoutesAtEitherEndOfTheSpace) {
  PrefixTable t;
  t.insert(prefix("0.0.0.0"), 1);
  t.insert(prefix("255.255.255.255"), 2);
  t.insert(prefix("::"), 3);
  t.insert(prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 4);
  EXPECT_EQ(t.lookup(addr("0.0.0.0"))->value, 1u);
  EXPECT_EQ(t.lookup(addr("255.255.255.255"))->value, 2u);
  EXPECT_FALSE(t.lookup(addr("255.255.255.254")));
  EXPECT_EQ(t.lookup(addr("::"))->value, 3u);
  EXPECT_EQ(t.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))->value, 4u);
  EXPECT_FALSE(t.lookup(addr("::1")));
}

TEST(PrefixTable, DuplicateReturnsTheExistingValue) {
  PrefixTable t;
  EXPECT_FALSE(t.insert(prefix("10.0.0.0/8"), 7));
  EXPECT_EQ(t.insert(prefix("10.0.0.0/8"), 8), 7u);
  EXPECT_FALSE(t.insert(prefix("10.0.0.1"), 9));
  EXPECT_EQ(t.insert(prefix("10.0.0.1/32"), 10), 9u);
  EXPECT_EQ(t.lookup(addr("10.0.0.2"))->value, 7u);
  EXPECT_EQ(t.size(), 2u);
}

TEST(PrefixTable, V4MappedClientsMatchIPv4Entries) {
  PrefixTable t;
  t.insert(prefix("192.0.2.0/24"), 1);
  EXPECT_EQ(t.lookup(addr("::ffff:192.0.2.9"))->value, 1u);
  EXPECT_FALSE(t.lookup(addr("::ffff:198.51.100.1")));
}

}  // namespace
}  // namespace mailgate::policy
