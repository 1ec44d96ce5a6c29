// tests/unit/policy/policy_test_util.h — helpers for the policy tests: a temporary policy
// database (fresh schema), a second connection for "someone else edits the file", and SQL.
// Not a test itself (only *_test.cc files are globbed into the test binary).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "policy/migrations.h"
#include "policy/sqlite.h"

namespace mailgate::policy::testing {

// A temp directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mailgate-policy-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Opens (creating) a database at `path`, bringing it to the current schema.
inline DbHandle make_db(const std::string& path) {
  auto db = open_db(path, OpenMode::kReadWriteCreate);
  EXPECT_TRUE(db) << db.error();
  auto m = migrate(db->get());
  EXPECT_TRUE(m) << m.error();
  return std::move(*db);
}

// Runs SQL, failing the test with SQLite's message on error.
inline void sql(sqlite3* db, const std::string& text) {
  auto r = exec(db, text);
  ASSERT_TRUE(r) << r.error() << "\nin: " << text;
}

// Opens a second connection that bypasses the CHECK constraints, as a careless hand edit with
// an old or altered schema would: the C++ validation must still refuse what it writes.
inline DbHandle raw_connection(const std::string& path) {
  auto db = open_db(path, OpenMode::kReadWrite);
  EXPECT_TRUE(db) << db.error();
  EXPECT_TRUE(exec(db->get(), "PRAGMA ignore_check_constraints = ON; PRAGMA foreign_keys = OFF"));
  return std::move(*db);
}

}  // namespace mailgate::policy::testing
