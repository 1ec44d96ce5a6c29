// dnsbl_zones_test.cc — the dnsbl_zones table in the policy snapshot (gateway/policy/
// dnsbl_zones.*): the lookup value the dnsbl plugin reads, and validation errors that name the
// row (written through a connection that bypasses the CHECK constraints, as a careless hand edit
// would).
#include "policy/dnsbl_zones.h"

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

TEST(DnsblZones, EnabledRowsAsJson) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO dnsbl_zones (zone, kind, symbol, score, codes, timeout_ms) VALUES "
      "('Zen.Example.Test', 'ip', 'RBL_ZEN', 1.5, "
      "'{\"127.0.0.2\": {\"symbol\": \"RBL_ZEN_SBL\", \"score\": 4}, "
      "\"127.0.0.10\": {\"symbol\": \"RBL_ZEN_PBL\"}}', 1500),"
      "('dbl.example.test', 'domain', 'DBL', 2, '{}', 800);"
      "INSERT INTO dnsbl_zones (zone, kind, symbol, enabled) VALUES "
      "('off.example.test', 'ip', 'OFF', 0);");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  ASSERT_TRUE((*snap)->lookup("dnsbl_zones", "*", &value));
  const nlohmann::json rows = nlohmann::json::parse(value);
  ASSERT_EQ(rows.size(), 2u) << value;  // the disabled row is not there; ordered by zone
  EXPECT_EQ(rows[0]["zone"], "dbl.example.test");
  EXPECT_EQ(rows[0]["kind"], "domain");
  EXPECT_EQ(rows[0]["symbol"], "DBL");
  EXPECT_EQ(rows[0]["score"], 2.0);
  EXPECT_EQ(rows[0]["codes"], nlohmann::json::object());
  EXPECT_EQ(rows[0]["timeout_ms"], 800);
  EXPECT_EQ(rows[1]["zone"], "zen.example.test");  // lower-cased
  EXPECT_EQ(rows[1]["kind"], "ip");
  EXPECT_EQ(rows[1]["score"], 1.5);
  EXPECT_EQ(rows[1]["timeout_ms"], 1500);
  EXPECT_EQ(rows[1]["codes"]["127.0.0.2"]["symbol"], "RBL_ZEN_SBL");
  EXPECT_EQ(rows[1]["codes"]["127.0.0.2"]["score"], 4.0);
  // A code without a score gets the row's.
  EXPECT_EQ(rows[1]["codes"]["127.0.0.10"]["symbol"], "RBL_ZEN_PBL");
  EXPECT_EQ(rows[1]["codes"]["127.0.0.10"]["score"], 1.5);
  EXPECT_EQ((*snap)->dnsbl_zones().rows().size(), 3u);
  EXPECT_FALSE((*snap)->lookup("dnsbl_zones", "zen.example.test", &value));
}

TEST(DnsblZones, NoEnabledZoneIsNotFound) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO dnsbl_zones (zone, kind, symbol, enabled) VALUES ('a.test', 'ip', 'A', 0)");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  EXPECT_FALSE((*snap)->lookup("dnsbl_zones", "*", &value));
}

// Each bad row makes the snapshot fail with a problem naming the row and what is wrong.
void expect_problem(const std::string& insert, const std::string& needle) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  {
    auto raw = raw_connection(dir.file("p.db"));
    sql(raw.get(), insert);
  }
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_FALSE(snap) << "accepted: " << insert;
  EXPECT_NE(join_problems(snap.error()).find(needle), std::string::npos)
      << join_problems(snap.error()) << "\nwanted: " << needle;
}

TEST(DnsblZones, BadRowsAreNamed) {
  const std::string head =
      "INSERT INTO dnsbl_zones (zone, kind, symbol, score, codes, timeout_ms) VALUES ";
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '[1, 2]', 100)",
                 "dnsbl_zones row 'bad.test': codes must be a JSON object");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.300\": {\"symbol\": \"Y\"}}', 100)",
                 "dnsbl_zones row 'bad.test': codes key '127.0.0.300' is not an IPv4 address in "
                 "127.0.0.0/8");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{\"10.0.0.2\": {\"symbol\": \"Y\"}}', 100)",
                 "codes key '10.0.0.2' is not an IPv4 address in 127.0.0.0/8");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.02\": {\"symbol\": \"Y\"}}', 100)",
                 "codes key '127.0.0.02'");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": \"Y\"}', 100)",
                 "dnsbl_zones row 'bad.test': codes '127.0.0.2' must map to an object");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": {\"score\": 3}}', 100)",
                 "codes '127.0.0.2': symbol is missing");
  expect_problem(
      head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": {\"symbol\": \"lower\"}}', 100)",
      "codes '127.0.0.2': symbol 'lower' must match");
  expect_problem(head +
                     "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": {\"symbol\": \"Y\", \"score\": "
                     "\"high\"}}', 100)",
                 "codes '127.0.0.2': score must be a number");
  expect_problem(
      head + "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": {\"symbol\": \"Y\", \"why\": 1}}', 100)",
      "codes '127.0.0.2': unknown field 'why'");
  expect_problem(head +
                     "('bad.test', 'ip', 'X', 1, '{\"127.0.0.2\": {\"symbol\": \"A\"}, "
                     "\"127.0.0.2\": {\"symbol\": \"B\"}}', 100)",
                 "duplicate key '127.0.0.2'");
  expect_problem(head + "('bad.test', 'url', 'X', 1, '{}', 100)",
                 "dnsbl_zones row 'bad.test': kind must be ip or domain (got 'url')");
  expect_problem(head + "('bad.test', 'ip', 'x-y', 1, '{}', 100)",
                 "dnsbl_zones row 'bad.test': symbol 'x-y' must match [A-Z0-9_]{1,64}");
  expect_problem(head + "('bad.test', 'ip', 'X', 1, '{}', 0)",
                 "dnsbl_zones row 'bad.test': timeout_ms must be between 1 and 60000 (got 0)");
  expect_problem(head + "('bad.test', 'ip', 'X', 'lots', '{}', 100)",
                 "dnsbl_zones row 'bad.test': score must be a number (got 'lots')");
  expect_problem(head + "('not a zone', 'ip', 'X', 1, '{}', 100)",
                 "dnsbl_zones row 'not a zone': zone 'not a zone' is not a valid domain name");
}

}  // namespace
}  // namespace mailgate::policy
