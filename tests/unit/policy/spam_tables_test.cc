// spam_tables_test.cc — the spam_rules and spam_thresholds tables in the policy snapshot
// (gateway/policy/spam_rules.*, spam_thresholds.*): the lookup values the spamscore plugin reads,
// and validation errors that name the row (rows written through a connection that bypasses the
// CHECK constraints, as a careless hand edit would). A pattern RE2 cannot compile refuses the
// snapshot, so the gateway keeps the one it has.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/snapshot.h"
#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using testing::make_db;
using testing::raw_connection;
using testing::sql;
using testing::TempDir;

std::string problems_of(const std::string& path) {
  auto db = open_db(path, OpenMode::kReadWrite);
  EXPECT_TRUE(db);
  auto snap = read_snapshot(db->get(), path);
  EXPECT_FALSE(snap) << "the snapshot was accepted";
  return snap ? "" : join_problems(snap.error());
}

TEST(SpamRules, EnabledRulesAsJson) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO spam_rules (name, kind, header, pattern, score, description) VALUES "
      "('MAILER', 'header', 'X-Mailer', 'Blaster', 0.5, 'bulk mailer'),"
      "('CASINO', 'body', NULL, '(?i)casino', 2, NULL);"
      "INSERT INTO spam_rules (name, kind, pattern, score, enabled) VALUES "
      "('OFF', 'url', 'x', 1, 0);");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  ASSERT_TRUE((*snap)->lookup("spam_rules", "*", &value));
  const nlohmann::json rows = nlohmann::json::parse(value);
  ASSERT_EQ(rows.size(), 2u);  // by name, the disabled row left out
  EXPECT_EQ(rows[0], nlohmann::json::parse(R"({"name":"CASINO","kind":"body","header":null,
      "pattern":"(?i)casino","score":2.0,"description":null})"));
  EXPECT_EQ(rows[1], nlohmann::json::parse(R"({"name":"MAILER","kind":"header",
      "header":"X-Mailer","pattern":"Blaster","score":0.5,"description":"bulk mailer"})"));
  EXPECT_EQ((*snap)->spam_rules().rows().size(), 3u);
  EXPECT_FALSE((*snap)->lookup("spam_rules", "CASINO", &value));
}

TEST(SpamRules, NoEnabledRuleIsNotFound) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO spam_rules (name, kind, pattern, score, enabled) VALUES "
      "('OFF', 'body', 'x', 1, 0);");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  EXPECT_FALSE((*snap)->lookup("spam_rules", "*", &value));
}

TEST(SpamRules, BadPatternRefusesTheSnapshotNamingTheRow) {
  TempDir dir;
  const std::string path = dir.file("p.db");
  make_db(path);
  {
    auto db = open_db(path, OpenMode::kReadWrite);
    sql(db->get(),
        "INSERT INTO spam_rules (name, kind, pattern, score) VALUES "
        "('GOOD', 'body', 'fine', 1), ('FOO', 'body', '(abc', 1);");
  }
  EXPECT_EQ(problems_of(path), "spam_rules row 'FOO': pattern does not compile: missing ): (abc");
  // A disabled row is checked too, so enabling it later cannot break the policy.
  {
    auto db = open_db(path, OpenMode::kReadWrite);
    sql(db->get(), "UPDATE spam_rules SET enabled = 0, pattern = 'a{2,1}' WHERE name = 'FOO'");
  }
  EXPECT_EQ(problems_of(path),
            "spam_rules row 'FOO': pattern does not compile: invalid repetition size: {2,1}");
}

TEST(SpamRules, HandEditedRowsAreChecked) {
  TempDir dir;
  const std::string path = dir.file("p.db");
  make_db(path);
  {
    auto raw = raw_connection(path);
    sql(raw.get(),
        "INSERT INTO spam_rules (name, kind, header, pattern, score, enabled) VALUES "
        "('lower', 'body', NULL, 'x', 1, 1), ('KIND', 'html', NULL, 'x', 1, 1),"
        "('NOHDR', 'header', NULL, 'x', 1, 1), ('HDR', 'body', 'Subject', 'x', 1, 1),"
        "('SCORE', 'body', NULL, 'x', 'lots', 1), ('EN', 'body', NULL, 'x', 1, 2)");
  }
  const std::string p = problems_of(path);
  EXPECT_NE(p.find("spam_rules row 'lower': name must match [A-Z0-9_]{1,64} (got 'lower')"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_rules row 'KIND': kind must be header, subject, body, url or raw "
                   "(got 'html')"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_rules row 'NOHDR': header must name a header field for kind 'header'"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_rules row 'HDR': header must be NULL unless kind is 'header'"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_rules row 'SCORE': score must be a number (got 'lots')"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_rules row 'EN': enabled must be 0 or 1 (got '2')"), std::string::npos)
      << p;
}

TEST(SpamThresholds, DomainRowElseStarRow) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
      "('*', 5, NULL, 15), ('Strict.Example', 2, 3, 4.5);");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  ASSERT_TRUE((*snap)->lookup("spam_thresholds", "strict.EXAMPLE", &value));
  EXPECT_EQ(nlohmann::json::parse(value),
            nlohmann::json::parse(R"({"domain":"strict.example","add_header":2.0,"tempfail":3.0,
                "reject":4.5})"));
  ASSERT_TRUE((*snap)->lookup("spam_thresholds", "sub.strict.example", &value));  // no parents
  EXPECT_EQ(nlohmann::json::parse(value),
            nlohmann::json::parse(R"({"domain":"*","add_header":5.0,"tempfail":null,
                "reject":15.0})"));
  EXPECT_EQ((*snap)->spam_thresholds().rows().size(), 2u);
}

TEST(SpamThresholds, WithoutStarRowOtherDomainsAreNotFound) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(), "INSERT INTO spam_thresholds (domain, reject) VALUES ('a.example', 10);");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  EXPECT_TRUE((*snap)->lookup("spam_thresholds", "a.example", &value));
  EXPECT_FALSE((*snap)->lookup("spam_thresholds", "b.example", &value));
}

TEST(SpamThresholds, BadRowsAreNamed) {
  TempDir dir;
  const std::string path = dir.file("p.db");
  make_db(path);
  {
    auto raw = raw_connection(path);
    sql(raw.get(),
        "INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
        "('upside.example', 8, NULL, 5), ('not a domain', 1, 2, 3),"
        "('text.example', 'high', NULL, NULL)");
  }
  const std::string p = problems_of(path);
  EXPECT_NE(p.find("spam_thresholds row 'upside.example': reject (5) must not be below "
                   "add_header (8)"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_thresholds row 'not a domain': domain 'not a domain' is not a valid "
                   "domain name"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("spam_thresholds row 'text.example': add_header must be a number or NULL "
                   "(got 'high')"),
            std::string::npos)
      << p;
}

}  // namespace
}  // namespace mailgate::policy
