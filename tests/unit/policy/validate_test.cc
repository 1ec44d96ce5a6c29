// tests/unit/policy/validate_test.cc — the value rules shared by the snapshot loader and
// mailgatectl (gateway/policy/validate.h): each accepts what it should and says why it refuses.
#include "policy/validate.h"

#include <gtest/gtest.h>

namespace mailgate::policy {
namespace {

std::string why(const Problem& p) { return p.value_or("(accepted)"); }

TEST(Validate, PluginName) {
  EXPECT_FALSE(check_plugin_name("spf"));
  EXPECT_FALSE(check_plugin_name("rate-limit_2"));
  EXPECT_FALSE(check_plugin_name(std::string(64, 'a')));
  const std::string msg = "is not a valid plugin name: use 1-64 characters of a-z, 0-9, '_', '-'";
  EXPECT_EQ(why(check_plugin_name("")), "'' " + msg);
  EXPECT_EQ(why(check_plugin_name("SPF")), "'SPF' " + msg);
  EXPECT_EQ(why(check_plugin_name("a.b")), "'a.b' " + msg);
  EXPECT_EQ(why(check_plugin_name("a/b")), "'a/b' " + msg);
  EXPECT_TRUE(check_plugin_name(std::string(65, 'a')));
}

TEST(Validate, PluginPath) {
  EXPECT_FALSE(check_plugin_path("spf.so"));
  EXPECT_FALSE(check_plugin_path("/usr/lib/mailgate/plugins/dkim.so"));
  EXPECT_FALSE(check_plugin_path("libexample.so.1"));
  EXPECT_FALSE(check_plugin_path("lib/libexample.so.1.2.3"));
  EXPECT_EQ(why(check_plugin_path("a.so.txt")), "'a.so.txt' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("a.so.")), "'a.so.' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("a.sox")), "'a.sox' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("")), "must not be empty");
  EXPECT_EQ(why(check_plugin_path("spf")), "'spf' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("/lib/.so")), "'/lib/.so' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("a.so/")), "'a.so/' does not name a shared object (*.so)");
  EXPECT_EQ(why(check_plugin_path("a\n.so")), "must not contain control characters");
}

TEST(Validate, ProfileFailModeTimeout) {
  EXPECT_FALSE(check_profile("*"));
  EXPECT_FALSE(check_profile("inbound"));
  EXPECT_FALSE(check_profile("Submission.587"));
  EXPECT_EQ(why(check_profile("in bound")),
            "'in bound' is not a valid profile: use '*' or 1-64 characters of A-Z, a-z, 0-9, "
            "'_', '.', '-'");
  EXPECT_TRUE(check_profile(""));
  EXPECT_TRUE(check_profile("**"));

  EXPECT_FALSE(check_fail_mode("open"));
  EXPECT_FALSE(check_fail_mode("tempfail"));
  EXPECT_EQ(why(check_fail_mode("closed")), "must be open or tempfail (got 'closed')");
  EXPECT_EQ(why(check_fail_mode("Open")), "must be open or tempfail (got 'Open')");

  EXPECT_FALSE(check_timeout_ms(1));
  EXPECT_FALSE(check_timeout_ms(600000));
  EXPECT_EQ(why(check_timeout_ms(0)), "must be 1..600000 milliseconds (got 0)");
  EXPECT_EQ(why(check_timeout_ms(600001)), "must be 1..600000 milliseconds (got 600001)");
  EXPECT_EQ(why(check_timeout_ms(-5)), "must be 1..600000 milliseconds (got -5)");
}

TEST(Validate, SettingsJson) {
  EXPECT_FALSE(check_settings_json("{}"));
  EXPECT_FALSE(
      check_settings_json(R"({"a": [1, 2.5e3, -0, true, false, null], "b": {"c": "\u00e9\n"}})"));
  EXPECT_FALSE(check_settings_json(" { \"x\" : \"\\ud83d\\ude00\" } "));
  // Same key in different objects is fine.
  EXPECT_FALSE(check_settings_json(R"({"a": {"k": 1}, "b": {"k": 2}})"));

  EXPECT_EQ(why(check_settings_json("[]")), "must be a JSON object");
  EXPECT_EQ(why(check_settings_json("\"x\"")), "must be a JSON object");
  EXPECT_EQ(why(check_settings_json("42")), "must be a JSON object");
  EXPECT_EQ(why(check_settings_json("null")), "must be a JSON object");
  EXPECT_EQ(why(check_settings_json(R"({"a": 1, "a": 2})")), "has a duplicate key 'a'");
  EXPECT_EQ(why(check_settings_json(R"({"o": {"k": 1, "k": 1}})")), "has a duplicate key 'k'");

  for (const char* bad : {"", "{", "{a: 1}", "{\"a\": 1,}", "{\"a\": 01}", "{\"a\": 'x'}", "{} {}",
                          "{\"a\": 1} // c", "{\"a\": NaN}", "{\"a\": \"\\x\"}",
                          "{\"a\": \"\xff\"}", "{\"a\": \"\\ud800\"}", "{\"a\": \"tab\there\"}"}) {
    auto p = check_settings_json(bad);
    ASSERT_TRUE(p) << "accepted: " << bad;
    EXPECT_TRUE(p->starts_with("is not valid JSON: ")) << *p;
  }
  EXPECT_EQ(why(check_settings_json("{\"a\": tru}")),
            "is not valid JSON: parse error at line 1, column 10: syntax error while parsing value "
            "- invalid literal; last read: '\"a\": tru}'");
}

TEST(Validate, Domain) {
  EXPECT_FALSE(check_domain("example.com"));
  EXPECT_FALSE(check_domain("EXAMPLE.com"));
  EXPECT_FALSE(check_domain("localhost"));
  EXPECT_FALSE(check_domain("xn--bcher-kva.example"));
  EXPECT_FALSE(check_domain("a-b.c0"));
  EXPECT_EQ(why(check_domain("")), "'' is not a valid domain name: is empty");
  EXPECT_EQ(why(check_domain("example.com.")),
            "'example.com.' is not a valid domain name: ends with a dot");
  EXPECT_EQ(why(check_domain("a..b")), "'a..b' is not a valid domain name: has an empty label");
  EXPECT_EQ(why(check_domain(".a")), "'.a' is not a valid domain name: has an empty label");
  EXPECT_EQ(why(check_domain("-a.com")),
            "'-a.com' is not a valid domain name: label '-a' starts or ends with '-'");
  EXPECT_EQ(why(check_domain("a_b.com")),
            "'a_b.com' is not a valid domain name: label 'a_b' has a character other than a-z, "
            "0-9 and '-'");
  EXPECT_EQ(why(check_domain("192.0.2.1")),
            "'192.0.2.1' is not a valid domain name: looks like an IP address (its last label is "
            "numeric)");
  const std::string long_label(64, 'a');
  EXPECT_EQ(why(check_domain(long_label + ".com")),
            "'" + long_label + ".com' is not a valid domain name: label '" + long_label +
                "' is longer than 63 characters");
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name += "com";
  EXPECT_EQ(why(check_domain(long_name)),
            "'" + long_name + "' is not a valid domain name: is longer than 253 characters");
}

TEST(Validate, Address) {
  EXPECT_FALSE(check_address("user@example.com"));
  EXPECT_FALSE(check_address("First.Last+tag@Example.COM"));
  EXPECT_EQ(why(check_address("user")), "'user' is not a valid address: no '@'");
  EXPECT_EQ(why(check_address("@example.com")),
            "'@example.com' is not a valid address: empty local part");
  EXPECT_EQ(why(check_address("a b@example.com")),
            "'a b@example.com' is not a valid address: local part has a space, control or '<>' "
            "character");
  EXPECT_EQ(why(check_address("<u@example.com>")),
            "'<u@example.com>' is not a valid address: local part has a space, control or '<>' "
            "character");
  EXPECT_EQ(why(check_address("u@")), "'u@' is not a valid address: domain is empty");
  EXPECT_EQ(why(check_address(std::string(65, 'u') + "@example.com")),
            "'" + std::string(65, 'u') +
                "@example.com' is not a valid address: local part longer than 64 characters");
}

TEST(Validate, AccessStageActionPattern) {
  for (const char* s :
       {"client", "helo", "sender", "sender_domain", "recipient", "recipient_domain"}) {
    EXPECT_FALSE(check_access_stage(s)) << s;
  }
  EXPECT_EQ(why(check_access_stage("rcpt")),
            "must be client, helo, sender, sender_domain, recipient or recipient_domain (got "
            "'rcpt')");
  EXPECT_FALSE(check_access_action("allow"));
  EXPECT_FALSE(check_access_action("deny"));
  EXPECT_FALSE(check_access_action("tempfail"));
  EXPECT_EQ(why(check_access_action("reject")), "must be allow, deny or tempfail (got 'reject')");

  EXPECT_FALSE(check_access_pattern("client", "10.0.0.0/8"));
  EXPECT_FALSE(check_access_pattern("client", "2001:db8::1"));
  EXPECT_EQ(why(check_access_pattern("client", "10.0.0.0/33")),
            "bad CIDR '10.0.0.0/33': prefix length must be 0..32");
  EXPECT_FALSE(check_access_pattern("helo", "mail.example.com"));
  EXPECT_FALSE(check_access_pattern("helo", ".example.com"));
  EXPECT_FALSE(check_access_pattern("helo", "[192.0.2.1]"));
  EXPECT_FALSE(check_access_pattern("helo", "ylmf-pc"));
  EXPECT_EQ(why(check_access_pattern("helo", "a b")),
            "'a b' is not a valid HELO name: has a space or control character");
  EXPECT_EQ(why(check_access_pattern("helo", ".")), "'.' is not a valid .suffix: is empty");
  EXPECT_FALSE(check_access_pattern("sender", "spam@example.com"));
  EXPECT_EQ(why(check_access_pattern("recipient", "example.com")),
            "'example.com' is not a valid address: no '@'");
  EXPECT_FALSE(check_access_pattern("sender_domain", "example.com"));
  EXPECT_FALSE(check_access_pattern("recipient_domain", ".example.com"));
  EXPECT_EQ(why(check_access_pattern("sender_domain", "..example.com")),
            "'..example.com' is not a valid domain or .suffix: has an empty label");
  EXPECT_EQ(why(check_access_pattern("sender_domain", "user@example.com")),
            "'user@example.com' is not a valid domain or .suffix: label 'user@example' has a "
            "character other than a-z, 0-9 and '-'");
}

TEST(Validate, AccessReply) {
  const std::optional<std::string> none;
  auto s = [](const char* t) { return std::optional<std::string>(t); };
  EXPECT_FALSE(check_access_reply("allow", std::nullopt, none, none));
  EXPECT_FALSE(check_access_reply("deny", std::nullopt, none, none));
  EXPECT_FALSE(check_access_reply("deny", 550, s("5.7.1"), s("Go away")));
  EXPECT_FALSE(check_access_reply("tempfail", 451, s("4.7.25"), s("later")));
  EXPECT_FALSE(check_access_reply("deny", std::nullopt, s("5.7.1"), none));

  EXPECT_EQ(why(check_access_reply("allow", 250, none, none)),
            "code, enhanced and text must be NULL for allow");
  EXPECT_EQ(why(check_access_reply("allow", std::nullopt, none, s("hi"))),
            "code, enhanced and text must be NULL for allow");
  EXPECT_EQ(why(check_access_reply("deny", 450, none, none)),
            "code must be 5xx for deny (got 450)");
  EXPECT_EQ(why(check_access_reply("tempfail", 550, none, none)),
            "code must be 4xx for tempfail (got 550)");
  EXPECT_EQ(why(check_access_reply("deny", 600, none, none)),
            "code must be 5xx for deny (got 600)");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, s("5.7"), none)),
            "enhanced must look like X.Y.Z, e.g. 5.7.1 (got '5.7')");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, s("5.7.1234"), none)),
            "enhanced must look like X.Y.Z, e.g. 5.7.1 (got '5.7.1234')");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, s("3.7.1"), none)),
            "enhanced must look like X.Y.Z, e.g. 5.7.1 (got '3.7.1')");
  EXPECT_EQ(why(check_access_reply("deny", 554, s("4.7.1"), none)),
            "enhanced must start with 5. for deny (got '4.7.1')");
  EXPECT_EQ(why(check_access_reply("tempfail", std::nullopt, s("5.7.1"), none)),
            "enhanced must start with 4. for tempfail (got '5.7.1')");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, none, s(""))),
            "text must not be empty (use NULL for the default)");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, none, s("a\r\nb"))),
            "text must be printable ASCII on one line");
  EXPECT_EQ(why(check_access_reply("deny", std::nullopt, none, std::string(401, 'x'))),
            "text must be at most 400 characters");
}

TEST(Validate, SettingsDomainAndLower) {
  EXPECT_FALSE(check_settings_domain("*"));
  EXPECT_FALSE(check_settings_domain("example.com"));
  EXPECT_EQ(why(check_settings_domain("**")),
            "'**' is not a valid domain name: label '**' has a "
            "character other than a-z, 0-9 and '-'");
  EXPECT_EQ(to_lower("MiXeD.Example.COM"), "mixed.example.com");
}

}  // namespace
}  // namespace mailgate::policy
