// routes_test.cc — the routes table in the policy snapshot
// (gateway/policy/routes.*): pattern kinds, the precedence exact > wildcard
// (most literal characters first) > catch-all, several destinations, drop,
// disabled rows, case-insensitivity, and validation errors that name the row
// (written through a connection that bypasses the CHECK constraints, as a hand
// edit could).
#include "policy/routes.h"

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

class RoutesTest : public ::testing::Test {
 protected:
  void load(const std::string &inserts) {
    db_ = make_db(dir_.file("p.db"));
    sql(db_.get(), inserts);
    auto snap = read_snapshot(db_.get(), "p.db");
    ASSERT_TRUE(snap) << join_problems(snap.error());
    snap_ = *snap;
  }
  // The lookup value as JSON, or null when not found.
  nlohmann::json route(std::string_view address) {
    std::string value;
    if (!snap_->lookup("routes", address, &value)) return nullptr;
    return nlohmann::json::parse(value);
  }

  TempDir dir_;
  DbHandle db_;
  SnapshotPtr snap_;
};

TEST_F(RoutesTest, PrecedenceExactWildcardCatchAll) {
  load(
      "INSERT INTO routes (pattern, destination) VALUES "
      "('@example.com', 'catchall@dest.test'),"
      "('sales-*@example.com', 'sales@dest.test'),"
      "('sales-eu-*@example.com', 'eu@dest.test'),"
      "('*-team@example.com', 'team@dest.test'),"
      "('sales-boss@example.com', 'boss@dest.test');");
  EXPECT_EQ(route("sales-boss@example.com")["destinations"], nlohmann::json({"boss@dest.test"}));
  EXPECT_EQ(route("sales-boss@example.com")["pattern"], "sales-boss@example.com");
  // Two wildcards match: the one with more literal characters wins.
  EXPECT_EQ(route("sales-eu-north@example.com")["pattern"], "sales-eu-*@example.com");
  EXPECT_EQ(route("sales-us@example.com")["pattern"], "sales-*@example.com");
  // 'sales-*' (6 literal characters) against '*-team' (5): the longer literal
  // wins.
  EXPECT_EQ(route("sales-team@example.com")["pattern"], "sales-*@example.com");
  EXPECT_EQ(route("ops-team@example.com")["pattern"], "*-team@example.com");
  // The '*' may match nothing.
  EXPECT_EQ(route("sales-@example.com")["pattern"], "sales-*@example.com");
  EXPECT_EQ(route("anyone@example.com")["pattern"], "@example.com");
  EXPECT_EQ(route("anyone@example.com")["action"], "forward");
  // Another domain, a subdomain, no domain: no route.
  EXPECT_TRUE(route("sales-boss@example.org").is_null());
  EXPECT_TRUE(route("x@sub.example.com").is_null());
  EXPECT_TRUE(route("example.com").is_null());
  EXPECT_TRUE(route("@example.com").is_null());
}

TEST_F(RoutesTest, CaseInsensitiveAndStoredLowerCase) {
  load(
      "INSERT INTO routes (pattern, destination) VALUES "
      "('User+*@Example.COM', 'Me@Dest.Test')");
  auto r = route("USER+tag@example.com");
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["pattern"], "user+*@example.com");
  EXPECT_EQ(r["destinations"], nlohmann::json({"me@dest.test"}));
  EXPECT_TRUE(route("user@example.com").is_null());  // "user+" must be there
}

TEST_F(RoutesTest, SeveralDestinationsInRowOrder) {
  load(
      "INSERT INTO routes (id, pattern, destination) VALUES "
      "(3, 'team@example.com', 'c@dest.test'), (1, 'team@example.com', "
      "'a@dest.test'),"
      "(2, 'team@example.com', 'b@other.test');");
  EXPECT_EQ(route("team@example.com")["destinations"],
            nlohmann::json({"a@dest.test", "b@other.test", "c@dest.test"}));
  EXPECT_EQ(snap_->routes().rows().size(), 3u);
}

TEST_F(RoutesTest, DropAndDisabled) {
  load(
      "INSERT INTO routes (pattern, destination, enabled) VALUES "
      "('spam-*@example.com', 'drop', 1), ('old@example.com', "
      "'new@dest.test', 0),"
      "('@example.com', 'all@dest.test', 1);");
  auto r = route("spam-trap@example.com");
  EXPECT_EQ(r["action"], "drop");
  EXPECT_FALSE(r.contains("destinations"));
  // The disabled exact route is ignored: the catch-all applies.
  EXPECT_EQ(route("old@example.com")["pattern"], "@example.com");
  std::string value;
  EXPECT_FALSE(snap_->lookup("routes:x", "old@example.com", &value));
}

TEST(RoutePatterns, Kinds) {
  RouteKind kind;
  EXPECT_FALSE(check_route_pattern("a@example.com", &kind));
  EXPECT_EQ(kind, RouteKind::kExact);
  EXPECT_FALSE(check_route_pattern("a+*@example.com", &kind));
  EXPECT_EQ(kind, RouteKind::kWildcard);
  EXPECT_FALSE(check_route_pattern("@example.com", &kind));
  EXPECT_EQ(kind, RouteKind::kCatchAll);
  EXPECT_EQ(*check_route_pattern("*@example.com"),
            "'*@example.com' is not a route pattern: write the catch-all as "
            "'@example.com'");
  EXPECT_EQ(*check_route_pattern("a*b*@example.com"),
            "'a*b*@example.com' is not a route pattern: at most one '*'");
  EXPECT_EQ(*check_route_pattern("a@*.example.com"),
            "'a@*.example.com' is not a route pattern: '*' only in the local part");
  EXPECT_NE(check_route_pattern("example.com")->find("(no '@')"), std::string::npos);
  EXPECT_NE(check_route_pattern("@bad..domain")->find("is not a valid domain name"),
            std::string::npos);
  EXPECT_FALSE(check_route_destination("drop"));
  EXPECT_FALSE(check_route_destination("a@b.test"));
  EXPECT_NE(check_route_destination("a*@b.test")->find("no '*'"), std::string::npos);
  EXPECT_NE(check_route_destination("a@b.test,c@d.test")->find("one address per row"),
            std::string::npos);
  EXPECT_NE(check_route_destination("nobody")->find("is not a valid address"), std::string::npos);
}

void expect_problem(const std::string &insert, const std::string &needle) {
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

TEST(Routes, BadRowsAreNamed) {
  const std::string head = "INSERT INTO routes (id, pattern, destination, enabled) VALUES ";
  expect_problem(head + "(7, 'a*b*@x.test', 'a@b.test', 1)",
                 "routes row 7: pattern 'a*b*@x.test' is not a route pattern: "
                 "at most one '*'");
  expect_problem(head + "(8, 'a@x.test', 'not-an-address', 1)",
                 "routes row 8: destination 'not-an-address' is not a valid address");
  expect_problem(head + "(9, 'a@x.test', 'a@b.test', 2)",
                 "routes row 9: enabled must be 0 or 1 (got '2')");
  expect_problem(head + "(4, '@x.test', 'a@b.test', 1), (5, '@X.test', 'drop', 1)",
                 "routes row 5: pattern '@x.test' has 'drop' and other "
                 "destinations (row 4)");
}

TEST(Routes, DropBesideADisabledDestinationIsFine) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO routes (pattern, destination, enabled) VALUES "
      "('@x.test', 'a@b.test', 0),"
      "('@x.test', 'drop', 1)");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  ASSERT_TRUE((*snap)->lookup("routes", "q@x.test", &value));
  EXPECT_EQ(nlohmann::json::parse(value)["action"], "drop");
}

}  // namespace
}  // namespace mailgate::policy
