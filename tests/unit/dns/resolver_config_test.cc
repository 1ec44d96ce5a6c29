// tests/unit/dns/resolver_config_test.cc — tests gateway/dns/resolver_config.cc: the
// IP[@PORT] forwarder syntax, resolv.conf, the upstream mode and the config checks.
#include "dns/resolver_config.h"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::dns {
namespace {

TEST(Forwarders, ParsesAddressesAndPorts) {
  auto list = parse_forwarders("127.0.0.1@5353, ::1 ,2001:db8::53@53,192.0.2.1");
  ASSERT_TRUE(list) << list.error();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0], (Forwarder{"127.0.0.1", 5353}));
  EXPECT_EQ((*list)[1], (Forwarder{"::1", 53}));
  EXPECT_EQ((*list)[2], (Forwarder{"2001:db8::53", 53}));
  EXPECT_EQ((*list)[3].to_string(), "192.0.2.1@53");
}

TEST(Forwarders, ErrorsNameTheItem) {
  struct Case {
    const char* list;
    const char* expect;
  };
  const Case cases[] = {
      {"127.0.0.1@0", "forwarder '127.0.0.1@0': port"},
      {"127.0.0.1@65536", "forwarder '127.0.0.1@65536': port"},
      {"127.0.0.1@", "forwarder '127.0.0.1@': port"},
      {"127.0.0.1@53x", "forwarder '127.0.0.1@53x': port"},
      {"127.0.0.1:53", "forwarder '127.0.0.1:53': not a numeric IP"},
      {"ns.example.com", "forwarder 'ns.example.com': not a numeric IP"},
      {"[::1]@53", "forwarder '[::1]@53': write IPv6 without brackets"},
      {"fe80::1%eth0", "forwarder 'fe80::1%eth0': IPv6 scope ids"},
      {"127.0.0.1,,::1", "empty forwarder in '127.0.0.1,,::1'"},
      {"", "empty forwarder in ''"},
      {"127.0.0.1,", "empty forwarder"},
  };
  for (const Case& c : cases) {
    auto list = parse_forwarders(c.list);
    ASSERT_FALSE(list) << c.list;
    EXPECT_EQ(list.error().rfind(c.expect, 0), 0u) << list.error();
  }
}

TEST(ResolvConf, ReadsNameservers) {
  auto servers = parse_resolv_conf(
      "# comment\nsearch example.com\nnameserver 192.0.2.53\n"
      "  nameserver\t2001:db8::53  # trailing\nnameserver fe80::1%eth0\noptions ndots:1\n");
  ASSERT_TRUE(servers) << servers.error();
  ASSERT_EQ(servers->size(), 2u);
  EXPECT_EQ((*servers)[0], (Forwarder{"192.0.2.53", 53}));
  EXPECT_EQ((*servers)[1], (Forwarder{"2001:db8::53", 53}));
}

TEST(ResolvConf, NoneMeansLocalhost) {
  auto servers = parse_resolv_conf("search example.com\n");
  ASSERT_TRUE(servers);
  ASSERT_EQ(servers->size(), 1u);
  EXPECT_EQ((*servers)[0], (Forwarder{"127.0.0.1", 53}));
}

TEST(ResolvConf, Errors) {
  auto bad = parse_resolv_conf("nameserver 192.0.2.1\nnameserver example.com\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().rfind("line 2: forwarder 'example.com'", 0), 0u) << bad.error();
  auto port = parse_resolv_conf("nameserver 192.0.2.1@5353\n");
  EXPECT_FALSE(port);
  auto only_scoped = parse_resolv_conf("nameserver fe80::1%eth0\n");
  ASSERT_FALSE(only_scoped);
  EXPECT_NE(only_scoped.error().find("no usable nameserver"), std::string::npos);
}

TEST(UpstreamMode, FromConfig) {
  ResolverConfig c;
  EXPECT_EQ(upstream_mode(c), UpstreamMode::kSystem);  // the production default
  c.forwarders = {Forwarder{"127.0.0.1", 5353}};
  EXPECT_EQ(upstream_mode(c), UpstreamMode::kForwarders);  // forwarders win
  c.forwarders.clear();
  c.use_system_resolver = false;
  EXPECT_EQ(upstream_mode(c), UpstreamMode::kLocalOnly);
  c.recursive = true;
  EXPECT_EQ(upstream_mode(c), UpstreamMode::kRecursive);
}

TEST(CheckConfig, Bounds) {
  ResolverConfig c;
  EXPECT_EQ(check(c), std::nullopt);
  c.timeout = std::chrono::milliseconds(0);
  EXPECT_TRUE(check(c));
  c = {};
  c.retries = -1;
  EXPECT_TRUE(check(c));
  c = {};
  c.msg_cache_size = 100;
  EXPECT_TRUE(check(c));
  c = {};
  c.rrset_cache_size = kMinCacheSize;
  EXPECT_EQ(check(c), std::nullopt);
  c = {};
  c.dnssec = true;
  c.trust_anchor_file.clear();
  EXPECT_TRUE(check(c));
  c = {};
  c.unbound_options = {{"bad name", "1"}};
  EXPECT_TRUE(check(c));
}

}  // namespace
}  // namespace mailgate::dns
