// tests/unit/dns/names_test.cc — tests gateway/dns/names.cc: PTR query names for IPv4, IPv6
// and IPv4-mapped addresses, and the query-name check.
#include "dns/names.h"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::dns {
namespace {

TEST(PtrName, Ipv4) {
  auto n = ptr_name("192.0.2.1");
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, "1.2.0.192.in-addr.arpa");
  EXPECT_EQ(*ptr_name("10.0.0.255"), "255.0.0.10.in-addr.arpa");
  EXPECT_EQ(*ptr_name("0.0.0.0"), "0.0.0.0.in-addr.arpa");
}

TEST(PtrName, Ipv6NibblesReversed) {
  auto n = ptr_name("2001:db8::567:89ab");
  ASSERT_TRUE(n) << n.error();
  // RFC 3596 §2.5 example, for 4321:0:1:2:3:4:567:89ab, checked the same way below.
  EXPECT_EQ(*n, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_EQ(*ptr_name("4321:0:1:2:3:4:567:89ab"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa");
  EXPECT_EQ(*ptr_name("::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
  // Upper-case input gives the same (lower-case) name.
  EXPECT_EQ(*ptr_name("2001:DB8::567:89AB"), *n);
}

TEST(PtrName, MappedIpv4UsesInAddrArpa) {
  EXPECT_EQ(*ptr_name("::ffff:192.0.2.1"), "1.2.0.192.in-addr.arpa");
}

TEST(PtrName, RejectsWhatIsNotAnAddress) {
  for (const char* bad : {"", "example.com", "192.0.2", "192.0.2.1/24", "256.0.0.1", "fe80::1%eth0",
                          " 192.0.2.1", "192.0.2.1 ", "1:2:3:4:5:6:7:8:9",
                          "0000000000000000000000000000000000000000000000000000000000000"}) {
    auto n = ptr_name(bad);
    EXPECT_FALSE(n) << bad;
    if (!n) {
      EXPECT_NE(n.error().find("not an IP address"), std::string::npos);
    }
  }
}

TEST(CheckQueryName, AcceptsNormalNames) {
  for (const char* ok :
       {"example.com", "example.com.", "a", ".", "_dmarc.example.com", "sel._domainkey.example.com",
        "1.2.0.192.in-addr.arpa", "xn--bcher-kva.example"}) {
    EXPECT_EQ(check_query_name(ok), std::nullopt) << ok;
  }
  EXPECT_EQ(check_query_name(std::string(63, 'a') + ".com"), std::nullopt);
}

TEST(CheckQueryName, RefusesBadNames) {
  EXPECT_TRUE(check_query_name(""));
  EXPECT_TRUE(check_query_name("a..b"));
  EXPECT_TRUE(check_query_name(".a"));
  EXPECT_TRUE(check_query_name("a.."));
  EXPECT_TRUE(check_query_name("a b.com"));
  EXPECT_TRUE(check_query_name(std::string("a\0b.com", 7)));
  EXPECT_TRUE(check_query_name("a\\.b.com"));
  EXPECT_TRUE(check_query_name(std::string(64, 'a') + ".com"));
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(50, 'x') + ".";
  long_name += "com";  // 258 characters
  EXPECT_TRUE(check_query_name(long_name));
}

}  // namespace
}  // namespace mailgate::dns
