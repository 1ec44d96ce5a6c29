// plugins/bayes/lib/bayes/sqlite_store.h — token counts in one SQLite file (the default store).
//
// Owns: the file's schema (created when missing; PRAGMA user_version 1):
//   bayes_tokens(token PRIMARY KEY, spam, ham)       per-token message counts
//   bayes_totals(label PRIMARY KEY, messages)        'spam' and 'ham' message counts
//   bayes_learned(digest PRIMARY KEY, label, learned_at)  which messages were learned as what
//   bayes_meta(key PRIMARY KEY, value)               'tokenizer_version'
// and its use: WAL journal (readers never wait for a learner), synchronous=NORMAL, a busy
// timeout so that the gateway's sessions, autolearn and `mailgatectl learn` in another process
// can write the same file at once; a writer that still cannot get the lock in time gets an
// error (the caller logs it and goes on).
// A file written by another tokenizer version is refused at open: its counts would not match.
// Threading: one connection under a mutex; every method from any thread.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <string>

#include "bayes/token_store.h"

namespace mailgate::bayes {

class SqliteTokenStore final : public TokenStore {
 public:
  // Opens (creating when missing, unless read_only) the file. Throws std::runtime_error naming
  // the file and SQLite's message on failure.
  SqliteTokenStore(const std::string& path, int busy_timeout_ms, bool read_only = false);

  std::string lookup(const std::vector<std::string>& tokens, std::vector<TokenCounts>& counts,
                     Totals& totals) override;
  std::string totals(Totals& totals) override;
  std::string learn(const std::vector<std::string>& tokens, Label label, const std::string& digest,
                    LearnOutcome& outcome) override;
  std::string describe() const override { return "sqlite:" + path_; }

  // Batches for bulk learning: between begin_batch() and end_batch() every learn() shares one
  // write transaction (mailgatectl learn commits every few hundred messages).
  std::string begin_batch();
  std::string end_batch();

 private:
  struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };
  struct StmtFinalize {
    void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
  };
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

  Stmt prepare(const char* sql);
  std::string exec(const char* sql);
  std::string error(const char* what) const;
  std::string read_totals(Totals& totals);
  std::string add_counts(const std::vector<std::string>& tokens, Label label, int delta);

  std::string path_;
  std::mutex mutex_;
  std::unique_ptr<sqlite3, DbClose> db_;
  Stmt select_token_, upsert_token_, prune_token_, select_totals_, upsert_total_, select_learned_,
      upsert_learned_;
  bool in_batch_ = false;
};

}  // namespace mailgate::bayes
