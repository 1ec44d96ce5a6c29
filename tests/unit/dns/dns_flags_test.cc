// tests/unit/dns/dns_flags_test.cc — tests gateway/dns/dns_flags.cc: --dns_* flags to
// ResolverConfig, and errors that name the flag.
#include "dns/dns_flags.h"

#include <gflags/gflags.h>
#include <gtest/gtest.h>

#include <string>

DECLARE_string(dns_servers);
DECLARE_uint32(dns_timeout_ms);
DECLARE_int32(dns_retries);
DECLARE_string(dns_local_zones);
DECLARE_uint64(dns_msg_cache_size);
DECLARE_bool(dns_dnssec);
DECLARE_string(dns_trust_anchor_file);

namespace mailgate::dns {
namespace {

TEST(DnsFlags, Defaults) {
  gflags::FlagSaver saver;
  auto c = config_from_flags();
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(upstream_mode(*c), UpstreamMode::kSystem);
  EXPECT_EQ(c->timeout.count(), 5000);
  EXPECT_FALSE(c->retries);
  EXPECT_FALSE(c->dnssec);
}

TEST(DnsFlags, ServersAndOptions) {
  gflags::FlagSaver saver;
  FLAGS_dns_servers = "127.0.0.1@5353,::1";
  FLAGS_dns_timeout_ms = 750;
  FLAGS_dns_retries = 2;
  FLAGS_dns_local_zones = "/etc/mailgate/zones.conf";
  FLAGS_dns_msg_cache_size = 1 << 20;
  auto c = config_from_flags();
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(upstream_mode(*c), UpstreamMode::kForwarders);
  ASSERT_EQ(c->forwarders.size(), 2u);
  EXPECT_EQ(c->forwarders[0].port, 5353);
  EXPECT_EQ(c->timeout.count(), 750);
  EXPECT_EQ(c->retries, 2);
  EXPECT_EQ(c->local_zones_file, "/etc/mailgate/zones.conf");
  EXPECT_EQ(c->msg_cache_size, 1u << 20);
}

TEST(DnsFlags, SpecialServerValues) {
  gflags::FlagSaver saver;
  FLAGS_dns_servers = "none";
  auto none = config_from_flags();
  ASSERT_TRUE(none);
  EXPECT_EQ(upstream_mode(*none), UpstreamMode::kLocalOnly);
  FLAGS_dns_servers = "recursive";
  auto recursive = config_from_flags();
  ASSERT_TRUE(recursive);
  EXPECT_EQ(upstream_mode(*recursive), UpstreamMode::kRecursive);
}

TEST(DnsFlags, ErrorsNameTheFlag) {
  {
    gflags::FlagSaver saver;
    FLAGS_dns_servers = "127.0.0.1@5353,bogus";
    auto c = config_from_flags();
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().rfind("--dns_servers: forwarder 'bogus'", 0), 0u) << c.error();
  }
  {
    gflags::FlagSaver saver;
    FLAGS_dns_timeout_ms = 0;
    auto c = config_from_flags();
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().rfind("--dns_timeout_ms:", 0), 0u) << c.error();
  }
  {
    gflags::FlagSaver saver;
    FLAGS_dns_retries = -2;
    EXPECT_EQ(config_from_flags().error().rfind("--dns_retries:", 0), 0u);
  }
  {
    gflags::FlagSaver saver;
    FLAGS_dns_msg_cache_size = 10;
    EXPECT_EQ(config_from_flags().error().rfind("--dns_msg_cache_size:", 0), 0u);
  }
  {
    gflags::FlagSaver saver;
    FLAGS_dns_dnssec = true;
    FLAGS_dns_trust_anchor_file = "";
    EXPECT_EQ(config_from_flags().error().rfind("--dns_trust_anchor_file:", 0), 0u);
  }
}

}  // namespace
}  // namespace mailgate::dns
