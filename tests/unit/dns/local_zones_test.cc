// tests/unit/dns/local_zones_test.cc — tests gateway/dns/local_zones.cc: the statements,
// quoting, comments, local-data-ptr, and errors that name file and line.
#include "dns/local_zones.h"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::dns {
namespace {

using Kind = LocalZoneEntry::Kind;

TEST(LocalZones, ParsesZonesDataAndPtr) {
  const char* text =
      "# test zones\n"
      "server:\n"
      "  local-zone: \"example.test.\" static   # a comment\n"
      "local-zone: other.test. transparent\n"
      "\n"
      "  local-data: \"mx.example.test. 300 IN MX 10 mail.example.test.\"\n"
      "local-data: 'txt.example.test. TXT \"v=spf1 # not a comment\" \"two\"'\n"
      "local-data-ptr: \"192.0.2.1 mail.example.test.\"\n"
      "local-data-ptr: \"2001:db8::1 60 mail.example.test.\"\r\n";
  auto entries = parse_local_zones(text, "zones.conf");
  ASSERT_TRUE(entries) << entries.error();
  ASSERT_EQ(entries->size(), 6u);
  const auto& e = *entries;
  EXPECT_EQ(e[0].kind, Kind::kZone);
  EXPECT_EQ(e[0].name, "example.test.");
  EXPECT_EQ(e[0].type, "static");
  EXPECT_EQ(e[0].where, "zones.conf:3");
  EXPECT_EQ(e[1].name, "other.test.");
  EXPECT_EQ(e[1].type, "transparent");
  EXPECT_EQ(e[2].kind, Kind::kData);
  EXPECT_EQ(e[2].data, "mx.example.test. 300 IN MX 10 mail.example.test.");
  EXPECT_EQ(e[3].data, "txt.example.test. TXT \"v=spf1 # not a comment\" \"two\"");
  EXPECT_EQ(e[4].data, "1.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.test.");
  EXPECT_EQ(e[5].data.substr(0, 8), "1.0.0.0.");
  EXPECT_NE(e[5].data.find("ip6.arpa. 60 IN PTR mail.example.test."), std::string::npos);
  EXPECT_EQ(e[5].where, "zones.conf:9");
}

TEST(LocalZones, EmptyTextIsEmpty) {
  auto entries = parse_local_zones("", "x");
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
}

TEST(LocalZones, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"local-zone: \"a.test.\"\n", "f:1: local-zone wants a name and a type"},
      {"\n\nlocal-data: \"a.test. A 192.0.2.1\n", "f:3: unterminated"},
      {"local-data: a.test. A 192.0.2.1\n", "f:1: local-data wants one record"},
      {"local-data: \"\"\n", "f:1: empty local-data"},
      {"include: other.conf\n", "f:1: unknown statement 'include'"},
      {"forward-zone\n", "f:1: expected"},
      {"local-data-ptr: \"example.com a.test.\"\n", "f:1: local-data-ptr: 'example.com' is not"},
      {"local-data-ptr: \"192.0.2.1\"\n", "f:1: local-data-ptr wants"},
      {"local-data-ptr: \"192.0.2.1 x60 a.test.\"\n", "f:1: local-data-ptr: bad TTL"},
      {"local-data: \"a.test. A 192.0.2.1\"x\n", "f:1: text right after a closing quote"},
      {"server: yes\n", "f:1: 'server:' takes no value"},
  };
  for (const Case& c : cases) {
    auto entries = parse_local_zones(c.text, "f");
    ASSERT_FALSE(entries) << c.text;
    EXPECT_EQ(entries.error().rfind(c.expect, 0), 0u) << entries.error();
  }
}

TEST(LocalZones, MissingFile) {
  auto entries = load_local_zones_file("/nonexistent/zones.conf");
  ASSERT_FALSE(entries);
  EXPECT_NE(entries.error().find("/nonexistent/zones.conf"), std::string::npos);
}

}  // namespace
}  // namespace mailgate::dns
