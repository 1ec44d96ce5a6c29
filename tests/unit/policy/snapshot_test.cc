// tests/unit/policy/snapshot_test.cc — the immutable policy snapshot (gateway/policy/
// snapshot.h): what it indexes and how lookups resolve precedence, and that every kind of bad
// row is refused with a message naming the table, the row and the problem.
#include "policy/snapshot.h"

#include <gtest/gtest.h>

#include "policy/validate.h"
#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using testing::make_db;
using testing::raw_connection;
using testing::sql;
using testing::TempDir;

asio::ip::address addr(const char* text) { return asio::ip::make_address(text); }

class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() : path_(dir_.file("policy.db")), db_(make_db(path_)) {}

  SnapshotPtr load() {
    auto s = load_snapshot(path_);
    EXPECT_TRUE(s) << s.error();
    return s ? *s : nullptr;
  }
  // The error of loading after `statements` were run on a connection without CHECKs.
  std::string load_error(const std::string& statements) {
    auto raw = raw_connection(path_);
    sql(raw.get(), statements);
    auto s = load_snapshot(path_);
    EXPECT_FALSE(s) << "accepted: " << statements;
    return s ? std::string() : s.error();
  }

  TempDir dir_;
  std::string path_;
  DbHandle db_;
};

TEST_F(SnapshotTest, EmptyDatabaseGivesAnEmptyPolicy) {
  auto s = load();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->plugins().empty());
  EXPECT_TRUE(s->plugins_for("inbound").empty());
  EXPECT_FALSE(s->is_local_domain("example.com"));
  EXPECT_FALSE(s->is_relay_network(addr("127.0.0.1")));
  EXPECT_EQ(s->match_access("client", "127.0.0.1"), nullptr);
  EXPECT_EQ(s->plugin_settings("spf", "example.com"), nullptr);
  EXPECT_EQ(s->schema_version(), latest_schema_version());
  EXPECT_EQ(s->source(), path_);
  EXPECT_GT(s->version(), 0u);
}

TEST_F(SnapshotTest, VersionsIncrease) {
  auto a = load();
  auto b = load();
  ASSERT_TRUE(a && b);
  EXPECT_GT(b->version(), a->version());
}

TEST_F(SnapshotTest, PluginChainOrderAndProfiles) {
  sql(db_.get(), R"(
    INSERT INTO plugins (position, name, path, enabled, profile, settings, fail_mode, timeout_ms)
    VALUES (20, 'dkim', '/opt/dkim.so', 1, '*', '{"sign": true}', 'open', 250),
           (10, 'spf', 'spf.so', 1, 'inbound', '{}', 'tempfail', 5000),
           (10, 'access', 'access.so', 1, '*', '{}', 'tempfail', 100),
           (30, 'off', 'off.so', 0, '*', '{}', 'tempfail', 100),
           (5, 'submit', 'submit.so', 1, 'submission', '{}', 'open', 100);
  )");
  auto s = load();
  ASSERT_TRUE(s);
  std::vector<std::string> all;
  for (const auto& e : s->plugins()) all.push_back(e.name);
  EXPECT_EQ(all, (std::vector<std::string>{"submit", "access", "spf", "dkim", "off"}));

  auto names = [](const std::vector<const PluginEntry*>& v) {
    std::vector<std::string> out;
    for (const PluginEntry* e : v) out.push_back(e->name);
    return out;
  };
  EXPECT_EQ(names(s->plugins_for("inbound")), (std::vector<std::string>{"access", "spf", "dkim"}));
  EXPECT_EQ(names(s->plugins_for("submission")),
            (std::vector<std::string>{"submit", "access", "dkim"}));
  EXPECT_EQ(names(s->plugins_for("other")), (std::vector<std::string>{"access", "dkim"}));

  const PluginEntry* dkim = s->plugin("dkim");
  ASSERT_NE(dkim, nullptr);
  EXPECT_EQ(dkim->path, "/opt/dkim.so");
  EXPECT_EQ(dkim->settings_json, R"({"sign": true})");
  EXPECT_EQ(dkim->fail_mode, FailMode::kOpen);
  EXPECT_EQ(dkim->timeout, std::chrono::milliseconds(250));
  EXPECT_TRUE(dkim->enabled);
  EXPECT_FALSE(s->plugin("off")->enabled);
  EXPECT_EQ(s->plugin("spf")->fail_mode, FailMode::kTempfail);
  EXPECT_EQ(s->plugin("nope"), nullptr);
}

TEST(ResolvePluginPath, RelativeToTheDirectory) {
  EXPECT_EQ(resolve_plugin_path("/abs/x.so", "/usr/lib/mailgate"), "/abs/x.so");
  EXPECT_EQ(resolve_plugin_path("x.so", "/usr/lib/mailgate"), "/usr/lib/mailgate/x.so");
  EXPECT_EQ(resolve_plugin_path("sub/x.so", "/usr/lib/mailgate/"), "/usr/lib/mailgate/sub/x.so");
  EXPECT_EQ(resolve_plugin_path("x.so", ""), "x.so");
}

TEST_F(SnapshotTest, LocalDomainsAreExactAndCaseInsensitive) {
  sql(db_.get(),
      "INSERT INTO local_domains (domain) VALUES ('example.com'), ('Mixed.Example.ORG')");
  auto s = load();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->is_local_domain("example.com"));
  EXPECT_TRUE(s->is_local_domain("EXAMPLE.COM"));
  EXPECT_TRUE(s->is_local_domain("mixed.example.org"));
  EXPECT_FALSE(s->is_local_domain("sub.example.com"));
  EXPECT_FALSE(s->is_local_domain("example.co"));
  EXPECT_FALSE(s->is_local_domain(""));
  EXPECT_EQ(s->local_domain_count(), 2u);
}

TEST_F(SnapshotTest, RelayNetworksLongestPrefix) {
  sql(db_.get(), R"(INSERT INTO relay_networks (cidr) VALUES
      ('10.0.0.0/8'), ('10.1.0.0/16'), ('192.0.2.7'), ('2001:DB8::/32'), ('::1/128'))");
  auto s = load();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->is_relay_network(addr("10.200.0.1")));
  EXPECT_EQ(*s->relay_network_for(addr("10.1.2.3")), "10.1.0.0/16");
  EXPECT_EQ(*s->relay_network_for(addr("10.2.2.3")), "10.0.0.0/8");
  EXPECT_EQ(*s->relay_network_for(addr("192.0.2.7")), "192.0.2.7/32");
  EXPECT_EQ(*s->relay_network_for(addr("::ffff:10.9.9.9")), "10.0.0.0/8");
  EXPECT_EQ(*s->relay_network_for(addr("2001:db8:ffff::1")), "2001:db8::/32");
  EXPECT_TRUE(s->is_relay_network(addr("::1")));
  EXPECT_FALSE(s->is_relay_network(addr("192.0.2.8")));
  EXPECT_FALSE(s->is_relay_network(addr("11.0.0.1")));
  EXPECT_FALSE(s->is_relay_network(addr("2001:db9::1")));
}

TEST_F(SnapshotTest, ClientAccessLongestPrefixWins) {
  sql(db_.get(), R"(INSERT INTO access (id, stage, pattern, action, code, enhanced, text) VALUES
      (1, 'client', '0.0.0.0/0', 'tempfail', NULL, NULL, NULL),
      (2, 'client', '198.51.100.0/24', 'deny', 550, '5.7.1', 'Go away'),
      (3, 'client', '198.51.100.25', 'allow', NULL, NULL, NULL),
      (4, 'client', '::/0', 'deny', NULL, NULL, NULL),
      (5, 'client', '2001:db8::/32', 'allow', NULL, NULL, NULL),
      (6, 'client', '2001:db8::bad', 'deny', 554, NULL, 'bad host'))");
  auto s = load();
  ASSERT_TRUE(s);
  auto id = [&](const char* ip) {
    const AccessRule* r = s->match_access(AccessStage::kClient, ip);
    return r ? r->id : 0;
  };
  EXPECT_EQ(id("198.51.100.25"), 3);
  EXPECT_EQ(id("198.51.100.26"), 2);
  EXPECT_EQ(id("::ffff:198.51.100.26"), 2);
  EXPECT_EQ(id("203.0.113.1"), 1);
  EXPECT_EQ(id("2001:db8::bad"), 6);
  EXPECT_EQ(id("2001:db8::1"), 5);
  EXPECT_EQ(id("fe80::1"), 4);
  EXPECT_EQ(id("not an ip"), 0);
  EXPECT_EQ(id("198.51.100.0/24"), 0);  // values are addresses, not patterns
  EXPECT_EQ(s->match_client(addr("198.51.100.25"))->id, 3);
  EXPECT_EQ(s->match_access("client", "198.51.100.26")->id, 2);
}

TEST_F(SnapshotTest, NameAccessExactBeforeSuffixLongestSuffixFirst) {
  sql(db_.get(), R"(INSERT INTO access (id, stage, pattern, action) VALUES
      (1, 'helo', '.example.com', 'deny'),
      (2, 'helo', '.mx.example.com', 'allow'),
      (3, 'helo', 'bad.mx.example.com', 'tempfail'),
      (4, 'helo', '[192.0.2.1]', 'deny'),
      (5, 'sender_domain', 'example.net', 'deny'),
      (6, 'sender_domain', '.example.net', 'tempfail'),
      (7, 'recipient_domain', '.Example.ORG', 'deny'),
      (8, 'sender', 'Spammer@Example.com', 'deny'),
      (9, 'recipient', 'abuse@example.com', 'allow'))");
  auto s = load();
  ASSERT_TRUE(s);
  auto id = [&](const char* stage, const char* value) {
    const AccessRule* r = s->match_access(stage, value);
    return r ? r->id : 0;
  };
  EXPECT_EQ(id("helo", "bad.mx.example.com"), 3);  // exact beats any suffix
  EXPECT_EQ(id("helo", "BAD.MX.EXAMPLE.COM"), 3);
  EXPECT_EQ(id("helo", "a.bad.mx.example.com"), 2);  // longest suffix
  EXPECT_EQ(id("helo", "good.mx.example.com"), 2);
  EXPECT_EQ(id("helo", "www.example.com"), 1);
  EXPECT_EQ(id("helo", "example.com"), 0);     // '.example.com' matches subdomains only
  EXPECT_EQ(id("helo", "mx.example.com"), 1);  // '.mx.example.com' does not match mx itself
  EXPECT_EQ(id("helo", "notexample.com"), 0);
  EXPECT_EQ(id("helo", "[192.0.2.1]"), 4);
  EXPECT_EQ(id("helo", ".example.com"), 0);  // a value is never read as a pattern

  EXPECT_EQ(id("sender_domain", "example.net"), 5);
  EXPECT_EQ(id("sender_domain", "mail.example.net"), 6);
  EXPECT_EQ(id("sender_domain", "example.com"), 0);
  EXPECT_EQ(id("recipient_domain", "a.b.example.org"), 7);
  EXPECT_EQ(id("recipient_domain", "example.org"), 0);
  EXPECT_EQ(id("sender_domain", "a.example.org"), 0);  // stages are separate

  EXPECT_EQ(id("sender", "spammer@example.com"), 8);
  EXPECT_EQ(id("sender", "SPAMMER@EXAMPLE.COM"), 8);
  EXPECT_EQ(id("sender", "other@example.com"), 0);
  EXPECT_EQ(id("recipient", "abuse@example.com"), 9);
  EXPECT_EQ(id("recipient", "spammer@example.com"), 0);
  EXPECT_EQ(id("nonsense", "x"), 0);
}

TEST_F(SnapshotTest, AccessRepliesHaveDefaults) {
  sql(db_.get(), R"(INSERT INTO access (id, stage, pattern, action, code, enhanced, text) VALUES
      (1, 'sender', 'a@example.com', 'deny', NULL, NULL, NULL),
      (2, 'sender', 'b@example.com', 'tempfail', NULL, NULL, NULL),
      (3, 'sender', 'c@example.com', 'deny', 550, '5.7.26', 'DMARC says no'),
      (4, 'sender', 'd@example.com', 'allow', NULL, NULL, NULL))");
  auto s = load();
  ASSERT_TRUE(s);
  const AccessRule* deny = s->match_access("sender", "a@example.com");
  EXPECT_EQ(deny->action, AccessAction::kDeny);
  EXPECT_EQ(deny->reply_code(), 554);
  EXPECT_EQ(deny->reply_enhanced(), "5.7.1");
  EXPECT_EQ(deny->reply_text(), "Access denied");
  EXPECT_FALSE(deny->code);
  EXPECT_EQ(deny->summary(), "deny 554 5.7.1 Access denied");
  EXPECT_EQ(s->match_access("sender", "b@example.com")->summary(),
            "tempfail 450 4.7.1 Try again later");
  EXPECT_EQ(s->match_access("sender", "c@example.com")->summary(), "deny 550 5.7.26 DMARC says no");
  const AccessRule* allow = s->match_access("sender", "d@example.com");
  EXPECT_EQ(allow->summary(), "allow");
  EXPECT_EQ(allow->reply_code(), 0);
  EXPECT_EQ(to_string(AccessStage::kRecipientDomain), "recipient_domain");
  EXPECT_EQ(parse_access_stage("sender_domain"), AccessStage::kSenderDomain);
  EXPECT_FALSE(parse_access_stage("Sender"));
  EXPECT_EQ(to_string(AccessAction::kTempfail), "tempfail");
}

TEST_F(SnapshotTest, PluginSettingsFallBackToTheDefault) {
  sql(db_.get(), R"(
    INSERT INTO plugins (position, name, path) VALUES (1, 'spf', 'spf.so'), (2, 'dkim', 'dkim.so');
    INSERT INTO plugin_settings (plugin, domain, settings) VALUES
      ('spf', '*', '{"mode": "soft"}'),
      ('spf', 'Example.com', '{"mode": "hard"}'),
      ('dkim', 'example.net', '{"selector": "s1"}');)");
  auto s = load();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->plugin_settings("spf", "example.com"), R"({"mode": "hard"})");
  EXPECT_EQ(*s->plugin_settings("spf", "EXAMPLE.COM"), R"({"mode": "hard"})");
  EXPECT_EQ(*s->plugin_settings("spf", "other.org"), R"({"mode": "soft"})");
  EXPECT_EQ(*s->plugin_settings("dkim", "example.net"), R"({"selector": "s1"})");
  EXPECT_EQ(s->plugin_settings("dkim", "example.com"), nullptr);
  EXPECT_EQ(s->plugin_settings("nope", "example.com"), nullptr);
}

TEST_F(SnapshotTest, GenericLookup) {
  sql(db_.get(), R"(
    INSERT INTO local_domains (domain) VALUES ('example.com');
    INSERT INTO relay_networks (cidr) VALUES ('10.0.0.0/8'), ('2001:db8::/32');
    INSERT INTO plugins (position, name, path) VALUES (1, 'spf', 'spf.so');
    INSERT INTO plugin_settings (plugin, domain, settings) VALUES ('spf', '*', '{"a": 1}');
    INSERT INTO access (stage, pattern, action, code, text) VALUES
      ('client', '192.0.2.0/24', 'deny', 550, 'No thanks'),
      ('helo', '.example.org', 'tempfail', NULL, NULL),
      ('recipient', 'x@example.com', 'allow', NULL, NULL);)");
  auto s = load();
  ASSERT_TRUE(s);
  auto get = [&](const char* table, const char* key) -> std::string {
    std::string out = "(unchanged)";
    return s->lookup(table, key, &out) ? out : "(none:" + out + ")";
  };
  EXPECT_EQ(get("local_domains", "EXAMPLE.com"), "1");
  EXPECT_EQ(get("local_domains", "example.org"), "(none:(unchanged))");
  EXPECT_EQ(get("relay_networks", "10.9.8.7"), "10.0.0.0/8");
  EXPECT_EQ(get("relay_networks", "2001:db8::25"), "2001:db8::/32");
  EXPECT_EQ(get("relay_networks", "192.0.2.1"), "(none:(unchanged))");
  EXPECT_EQ(get("relay_networks", "garbage"), "(none:(unchanged))");
  EXPECT_EQ(get("plugin_settings", "spf/example.com"), R"({"a": 1})");
  EXPECT_EQ(get("plugin_settings", "spf"), "(none:(unchanged))");
  EXPECT_EQ(get("plugin_settings", "dkim/example.com"), "(none:(unchanged))");
  EXPECT_EQ(get("access:client", "192.0.2.55"), "deny 550 5.7.1 No thanks");
  EXPECT_EQ(get("access:helo", "mx.example.org"), "tempfail 450 4.7.1 Try again later");
  EXPECT_EQ(get("access:recipient", "X@Example.com"), "allow");
  EXPECT_EQ(get("access:sender", "x@example.com"), "(none:(unchanged))");
  EXPECT_EQ(get("access:bogus", "x"), "(none:(unchanged))");
  EXPECT_EQ(get("no_such_table", "x"), "(none:(unchanged))");
}

// Every refusal names the table, the row and the problem. The rows are written through a
// connection that ignores CHECK constraints, as a hand edit against a looser schema would be.
TEST_F(SnapshotTest, PluginRowErrors) {
  const char* insert =
      "INSERT INTO plugins (position, name, path, enabled, profile, settings, fail_mode, "
      "timeout_ms) VALUES ";
  struct Case {
    const char* values;
    const char* error;
  } cases[] = {
      {"(1, 'Bad Name', 'x.so', 1, '*', '{}', 'open', 5)",
       "plugins row 'Bad Name': name 'Bad Name' is not a valid plugin name: use 1-64 characters "
       "of a-z, 0-9, '_', '-'"},
      {"(1, 'x', 'x', 1, '*', '{}', 'open', 5)",
       "plugins row 'x': path 'x' does not name a shared object (*.so)"},
      {"(1, 'x', '', 1, '*', '{}', 'open', 5)", "plugins row 'x': path must not be empty"},
      {"(1, 'x', 'x.so', 2, '*', '{}', 'open', 5)",
       "plugins row 'x': enabled must be 0 or 1 (got 2)"},
      {"(1, 'x', 'x.so', 'yes', '*', '{}', 'open', 5)",
       "plugins row 'x': enabled must be an integer (got 'yes')"},
      {"(1, 'x', 'x.so', 1, 'in bound', '{}', 'open', 5)",
       "plugins row 'x': profile 'in bound' is not a valid profile: use '*' or 1-64 characters of "
       "A-Z, a-z, 0-9, '_', '.', '-'"},
      {"(1, 'spf', 'spf.so', 1, '*', '{\"a\": }', 'open', 5)",
       "plugins row 'spf': settings is not valid JSON: parse error at line 1, column 7: syntax "
       "error while parsing value - unexpected '}'; expected '[', '{', or a literal"},
      {"(1, 'spf', 'spf.so', 1, '*', '[1]', 'open', 5)",
       "plugins row 'spf': settings must be a JSON object"},
      {"(1, 'spf', 'spf.so', 1, '*', '{\"a\":1,\"a\":2}', 'open', 5)",
       "plugins row 'spf': settings has a duplicate key 'a'"},
      {"(1, 'x', 'x.so', 1, '*', '{}', 'closed', 5)",
       "plugins row 'x': fail_mode must be open or tempfail (got 'closed')"},
      {"(1, 'x', 'x.so', 1, '*', '{}', 'open', 0)",
       "plugins row 'x': timeout_ms must be 1..600000 milliseconds (got 0)"},
      {"(1, 'x', 'x.so', 1, '*', '{}', 'open', 'soon')",
       "plugins row 'x': timeout_ms must be an integer (got 'soon')"},
      {"('first', 'x', 'x.so', 1, '*', '{}', 'open', 5)",
       "plugins row 'x': position must be an integer (got 'first')"},
  };
  for (const Case& c : cases) {
    sql(db_.get(), "DELETE FROM plugins");
    EXPECT_EQ(load_error(std::string(insert) + c.values), c.error) << c.values;
  }
}

TEST_F(SnapshotTest, DomainAndNetworkRowErrors) {
  EXPECT_EQ(load_error("INSERT INTO local_domains (domain) VALUES ('bad_domain.com')"),
            "local_domains row 'bad_domain.com': 'bad_domain.com' is not a valid domain name: "
            "label 'bad_domain' has a character other than a-z, 0-9 and '-'");
  sql(db_.get(), "DELETE FROM local_domains");
  EXPECT_EQ(load_error("INSERT INTO relay_networks (cidr) VALUES ('10.0.0.0/33')"),
            "relay_networks row '10.0.0.0/33': bad CIDR '10.0.0.0/33': prefix length must be "
            "0..32");
  sql(db_.get(), "DELETE FROM relay_networks");
  EXPECT_EQ(load_error("INSERT INTO relay_networks (cidr) VALUES ('10.0.0.1'), ('10.0.0.1/32')"),
            "relay_networks row '10.0.0.1/32': is the same network as row '10.0.0.1'");
}

TEST_F(SnapshotTest, AccessRowErrors) {
  struct Case {
    const char* values;  // (id, stage, pattern, action, code, enhanced, text)
    const char* error;
  } cases[] = {
      {"(7, 'client', '10.0.0.0/33', 'deny', NULL, NULL, NULL)",
       "access row 7: bad CIDR '10.0.0.0/33': prefix length must be 0..32"},
      {"(7, 'client', '10.0.0.1/8', 'deny', NULL, NULL, NULL)",
       "access row 7: bad CIDR '10.0.0.1/8': host bits set; did you mean '10.0.0.0/8'?"},
      {"(7, 'rcpt', 'a@b.com', 'deny', NULL, NULL, NULL)",
       "access row 7: stage must be client, helo, sender, sender_domain, recipient or "
       "recipient_domain (got 'rcpt')"},
      {"(7, 'sender', 'a@b.com', 'reject', NULL, NULL, NULL)",
       "access row 7: action must be allow, deny or tempfail (got 'reject')"},
      {"(7, 'sender', 'not-an-address', 'deny', NULL, NULL, NULL)",
       "access row 7: 'not-an-address' is not a valid address: no '@'"},
      {"(7, 'helo', 'two words', 'deny', NULL, NULL, NULL)",
       "access row 7: 'two words' is not a valid HELO name: has a space or control character"},
      {"(7, 'sender_domain', 'exa mple.com', 'deny', NULL, NULL, NULL)",
       "access row 7: 'exa mple.com' is not a valid domain or .suffix: label 'exa mple' has a "
       "character other than a-z, 0-9 and '-'"},
      {"(7, 'sender', 'a@b.com', 'deny', 450, NULL, NULL)",
       "access row 7: code must be 5xx for deny (got 450)"},
      {"(7, 'sender', 'a@b.com', 'deny', 'soon', NULL, NULL)",
       "access row 7: code must be an integer (got 'soon')"},
      {"(7, 'sender', 'a@b.com', 'tempfail', NULL, '5.7.1', NULL)",
       "access row 7: enhanced must start with 4. for tempfail (got '5.7.1')"},
      {"(7, 'sender', 'a@b.com', 'allow', NULL, NULL, 'welcome')",
       "access row 7: code, enhanced and text must be NULL for allow"},
      {"(7, 'sender', 'a@b.com', 'deny', NULL, NULL, 'two' || char(10) || 'lines')",
       "access row 7: text must be printable ASCII on one line"},
  };
  for (const Case& c : cases) {
    sql(db_.get(), "DELETE FROM access");
    EXPECT_EQ(load_error(std::string("INSERT INTO access (id, stage, pattern, action, code, "
                                     "enhanced, text) VALUES ") +
                         c.values),
              c.error)
        << c.values;
  }
  sql(db_.get(), "DELETE FROM access");
  EXPECT_EQ(load_error("INSERT INTO access (id, stage, pattern, action) VALUES "
                       "(3, 'client', '10.0.0.1', 'deny'), (9, 'client', '10.0.0.1/32', 'allow')"),
            "access row 9: pattern '10.0.0.1/32' duplicates row 3 ('10.0.0.1') for stage client");
}

TEST_F(SnapshotTest, PluginSettingsRowErrors) {
  sql(db_.get(), "INSERT INTO plugins (position, name, path) VALUES (1, 'spf', 'spf.so')");
  EXPECT_EQ(load_error("INSERT INTO plugin_settings (plugin, domain, settings) VALUES "
                       "('nope', '*', '{}')"),
            "plugin_settings row 'nope/*': unknown plugin 'nope' (not in the plugins table)");
  sql(db_.get(), "DELETE FROM plugin_settings");
  EXPECT_EQ(load_error("INSERT INTO plugin_settings (plugin, domain, settings) VALUES "
                       "('spf', 'bad_d', '{}')"),
            "plugin_settings row 'spf/bad_d': domain 'bad_d' is not a valid domain name: label "
            "'bad_d' has a character other than a-z, 0-9 and '-'");
  sql(db_.get(), "DELETE FROM plugin_settings");
  EXPECT_EQ(load_error("INSERT INTO plugin_settings (plugin, domain, settings) VALUES "
                       "('spf', 'example.com', 'not json')"),
            "plugin_settings row 'spf/example.com': settings is not valid JSON: parse error at "
            "line 1, column 2: syntax error while parsing value - invalid literal; last read: "
            "'no'");
}

TEST_F(SnapshotTest, SettingsOfARefusedPluginAreNotReportedTwice) {
  EXPECT_EQ(load_error("INSERT INTO plugins (position, name, path, fail_mode) VALUES "
                       "(1, 'spf', 'spf.so', 'never');"
                       "INSERT INTO plugin_settings (plugin, domain, settings) VALUES "
                       "('spf', '*', '{}')"),
            "plugins row 'spf': fail_mode must be open or tempfail (got 'never')");
}

TEST_F(SnapshotTest, NullsUnderAHandAlteredSchema) {
  // Someone rebuilt a table without its NOT NULL constraints: the loader still refuses NULLs.
  sql(db_.get(), R"(
    DROP TABLE plugin_settings;
    DROP TABLE plugins;
    CREATE TABLE plugins (id INTEGER PRIMARY KEY, position, name, path, enabled, profile,
                          settings, fail_mode, timeout_ms);
    CREATE TABLE plugin_settings (plugin, domain, settings);
    INSERT INTO plugins VALUES (4, 1, 'x', NULL, 1, '*', '{}', 'open', 5);
    INSERT INTO plugins VALUES (5, 2, NULL, 'y.so', 1, '*', '{}', 'open', 5);
    INSERT INTO plugins VALUES (6, 3, 'z', 'z.so', 1, '*', x'7b7d', 'open', 5);)");
  auto s = load_snapshot(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(),
            "plugins row 'x': path must not be NULL; plugins row id 5: name must not be NULL; "
            "plugins row 'z': settings must be text, not a blob");
}

TEST_F(SnapshotTest, AllProblemsAreReportedTogether) {
  auto raw = raw_connection(path_);
  sql(raw.get(), R"(
    INSERT INTO local_domains (domain) VALUES ('ok.example'), ('bad!');
    INSERT INTO access (id, stage, pattern, action) VALUES (1, 'client', '300.0.0.1', 'deny');)");
  auto s = read_snapshot(db_.get(), path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), (std::vector<std::string>{
                           "local_domains row 'bad!': 'bad!' is not a valid domain name: label "
                           "'bad!' has a character other than a-z, 0-9 and '-'",
                           "access row 1: bad CIDR '300.0.0.1': not an IPv4 or IPv6 address"}));
  auto joined = load_snapshot(path_);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), join_problems(s.error()));
}

TEST_F(SnapshotTest, MissingTableIsNamed) {
  sql(db_.get(), "DROP TABLE access");
  auto s = load_snapshot(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "access: cannot read the table: no such table: access");
}

TEST_F(SnapshotTest, MissingFileIsNotCreated) {
  auto s = load_snapshot(dir_.file("nope.db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "cannot open policy database '" + dir_.file("nope.db") +
                           "': unable to open database file");
  EXPECT_FALSE(std::filesystem::exists(dir_.file("nope.db")));
}

TEST_F(SnapshotTest, ReadSnapshotCanRunInsideTheCallersTransaction) {
  sql(db_.get(), "BEGIN; INSERT INTO local_domains (domain) VALUES ('pending.example')");
  auto s = read_snapshot(db_.get(), path_, /*assign_version=*/false);
  ASSERT_TRUE(s);
  EXPECT_TRUE((*s)->is_local_domain("pending.example"));  // sees the uncommitted change
  EXPECT_EQ((*s)->version(), 0u);
  sql(db_.get(), "ROLLBACK");
}

}  // namespace
}  // namespace mailgate::policy
