// tests/unit/policy/migrations_test.cc — the embedded schema migrations (gateway/policy/
// migrations.h): a fresh database reaches the latest version, a current one is left alone, a
// newer one is refused untouched, and db/schema.sql describes the same tables as the migrations.
#include "policy/migrations.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "policy/snapshot.h"
#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using testing::sql;
using testing::TempDir;

DbHandle open_new(const std::string& path) {
  auto db = open_db(path, OpenMode::kReadWriteCreate);
  EXPECT_TRUE(db) << db.error();
  return std::move(*db);
}

int64_t user_version(sqlite3* db) { return *query_int(db, "PRAGMA user_version"); }

// It will hold DKIM private keys: a database the gateway or mailgatectl creates is 0600, and
// an existing one keeps the mode its admin gave it.
TEST(OpenDb, CreatesThePolicyDatabaseForItsOwnerOnly) {
  TempDir dir;
  const std::string path = dir.file("new.db");
  { DbHandle db = open_new(path); }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  { DbHandle db = open_new(path); }
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Migrations, AreEmbeddedInOrder) {
  auto all = migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i + 1));
    EXPECT_FALSE(all[i].sql.empty());
    EXPECT_NE(all[i].sql.find("PRAGMA user_version = " + std::to_string(i + 1)), std::string::npos)
        << all[i].file;
  }
  EXPECT_EQ(all.front().file, "0001_initial.sql");
  EXPECT_EQ(latest_schema_version(), all.back().version);
}

TEST(Migrations, EmptyDatabaseIsBroughtToTheLatestVersion) {
  TempDir dir;
  auto db = open_new(dir.file("p.db"));
  auto r = migrate(db.get());
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->from_version, 0);
  EXPECT_EQ(r->to_version, latest_schema_version());
  EXPECT_EQ(user_version(db.get()), latest_schema_version());
  for (const char* table :
       {"plugins", "local_domains", "relay_networks", "access", "plugin_settings"}) {
    EXPECT_EQ(*query_int(db.get(), std::string("SELECT count(*) FROM sqlite_schema WHERE "
                                               "type = 'table' AND name = '") +
                                       table + "'"),
              1)
        << table;
  }
  // And the result loads as an (empty) snapshot.
  EXPECT_TRUE(load_snapshot(dir.file("p.db")));
}

TEST(Migrations, CurrentDatabaseIsLeftAlone) {
  TempDir dir;
  auto db = open_new(dir.file("p.db"));
  ASSERT_TRUE(migrate(db.get()));
  int64_t changes = *query_int(db.get(), "PRAGMA data_version");
  auto again = migrate(db.get());
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->from_version, latest_schema_version());
  EXPECT_EQ(again->to_version, latest_schema_version());
  EXPECT_EQ(*query_int(db.get(), "PRAGMA data_version"), changes);
}

TEST(Migrations, NewerDatabaseIsRefusedUntouched) {
  TempDir dir;
  auto db = open_new(dir.file("p.db"));
  ASSERT_TRUE(migrate(db.get()));
  const int newer = latest_schema_version() + 5;
  sql(db.get(), "PRAGMA user_version = " + std::to_string(newer));
  auto r = migrate(db.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "policy database has schema version " + std::to_string(newer) +
                           ", newer than this mailgate knows (" +
                           std::to_string(latest_schema_version()) +
                           "); upgrade mailgate or use a database made for this version");
  EXPECT_EQ(user_version(db.get()), newer);

  auto s = load_snapshot(dir.file("p.db"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), dir.file("p.db") + ": " + r.error());
}

TEST(Migrations, FailedMigrationLeavesNothingBehind) {
  TempDir dir;
  auto db = open_new(dir.file("p.db"));
  // A table in the way of migration 1: its CREATE TABLE fails and the transaction rolls back.
  sql(db.get(), "CREATE TABLE access (x)");
  auto r = migrate(db.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "schema migration 1 (0001_initial.sql) failed: table access already exists");
  EXPECT_EQ(user_version(db.get()), 0);
  EXPECT_EQ(*query_int(db.get(), "SELECT count(*) FROM sqlite_schema WHERE name = 'plugins'"), 0);
  EXPECT_TRUE(sqlite3_get_autocommit(db.get()));  // no transaction left open
}

TEST(Migrations, OpenRefusesAFileThatIsNotADatabase) {
  TempDir dir;
  std::ofstream(dir.file("junk.db")) << "this is not sqlite, just some text long enough......\n"
                                     << std::string(200, 'x');
  auto db = open_db(dir.file("junk.db"), OpenMode::kReadWrite);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error(),
            "cannot open policy database '" + dir.file("junk.db") + "': file is not a database");
}

// Column and index shape of every table, for comparing two databases.
std::map<std::string, std::string> shape(sqlite3* db) {
  std::map<std::string, std::string> out;
  auto tables = prepare(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
  while (sqlite3_step(tables->get()) == SQLITE_ROW) {
    std::string table = *column_text(tables->get(), 0);
    std::ostringstream s;
    auto cols = prepare(db,
                        "SELECT name, type, \"notnull\", dflt_value, pk FROM "
                        "pragma_table_info('" +
                            table + "')");
    while (sqlite3_step(cols->get()) == SQLITE_ROW) {
      for (int i = 0; i < 5; ++i) s << column_text(cols->get(), i).value_or("NULL") << " ";
      s << "\n";
    }
    auto idx = prepare(db,
                       "SELECT il.name, il.\"unique\", group_concat(ii.name) FROM "
                       "pragma_index_list('" +
                           table +
                           "') il, pragma_index_info(il.name) ii "
                           "GROUP BY il.name ORDER BY il.name");
    while (sqlite3_step(idx->get()) == SQLITE_ROW) {
      // Auto-index names differ only by creation order; keep their shape, not their name.
      std::string name = *column_text(idx->get(), 0);
      if (name.starts_with("sqlite_autoindex_")) name = "auto";
      s << "index " << name << " " << *column_text(idx->get(), 1) << " "
        << *column_text(idx->get(), 2) << "\n";
    }
    // CHECK constraints and collations live only in the statement text: compare it with
    // comments and whitespace removed.
    auto text = prepare(db, "SELECT sql FROM sqlite_schema WHERE name = '" + table + "'");
    sqlite3_step(text->get());
    std::string create = *column_text(text->get(), 0);
    std::string normalized;
    for (size_t i = 0; i < create.size(); ++i) {
      if (create.compare(i, 2, "--") == 0) {
        i = create.find('\n', i);
        if (i == std::string::npos) break;
        continue;
      }
      if (!isspace(static_cast<unsigned char>(create[i]))) normalized += create[i];
    }
    s << normalized << "\n";
    out[table] = s.str();
  }
  return out;
}

TEST(Migrations, SchemaSqlMatchesTheMigrations) {
  TempDir dir;
  auto migrated = open_new(dir.file("migrated.db"));
  ASSERT_TRUE(migrate(migrated.get()));

  std::ifstream in(std::string(MAILGATE_TEST_DATA_DIR) + "/../../db/schema.sql");
  ASSERT_TRUE(in) << "db/schema.sql not found";
  std::stringstream text;
  text << in.rdbuf();
  auto reference = open_new(dir.file("reference.db"));
  sql(reference.get(), text.str());
  EXPECT_EQ(user_version(reference.get()), latest_schema_version());

  auto a = shape(migrated.get());
  auto b = shape(reference.get());
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  for (const auto& [table, s] : a) EXPECT_EQ(s, b[table]) << table;
}

}  // namespace
}  // namespace mailgate::policy
