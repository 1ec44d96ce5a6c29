// plugins/dmarc/history_db.h — the aggregate-report history (RFC 7489 section 7.2 and
// appendix C): one SQLite row per message the plugin evaluated, for a later report writer.
//
// Owns: the database file named by the "history_db" setting, its schema (table dmarc_history,
// created when missing, PRAGMA user_version 1) and the inserts. One connection in WAL mode
// with a busy timeout, used under a mutex, so any number of sessions may record at once.
// Must not: affect the mail: a failed insert is returned as text for the caller to log,
// never thrown. Opening or creating the file at start-up throws (the plugin does not load).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace mailgate::dmarc {

struct HistoryRow {
  std::int64_t date = 0;  // Unix time of the evaluation
  std::string tx_id;      // the gateway's transaction id
  std::string source_ip;
  std::string helo;
  std::string header_from;       // RFC5322.From domain ("" when none)
  std::string envelope_from;     // MAIL FROM address ("" for the null sender)
  std::string envelope_to;       // the first recipient's domain
  std::string policy_domain;     // where the record was found ("" when none)
  std::string record;            // the record as published
  std::string p, sp;             // "none"|"quarantine"|"reject"; sp "" when absent
  int pct = -1;                  // -1 when no record
  std::string adkim, aspf;       // "r"|"s"; "" when no record
  std::string rua;               // comma-separated
  std::string result;            // dmarc result: pass, fail, none, temperror, permerror
  std::string policy_requested;  // p or sp that applied ("" when no record)
  std::string disposition;       // none, quarantine, reject: what was applied
  std::string override_reason;   // "", "sampled_out", "local_policy"
  std::string dkim_aligned;      // "pass" | "fail"
  std::string spf_aligned;       // "pass" | "fail"
  std::string dkim;              // JSON array of {"domain","selector","result","aligned"}
  std::string spf_domain, spf_scope, spf_result;
};

class HistoryDb {
 public:
  // Opens (creating when missing) the database at `path`; throws std::runtime_error naming
  // the file and SQLite's message on failure.
  explicit HistoryDb(const std::string& path);
  // Inserts one row; "" on success, else what went wrong (for the log).
  std::string record(const HistoryRow& row);
  const std::string& path() const { return path_; }

 private:
  struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };
  struct StmtFinalize {
    void operator()(sqlite3_stmt* st) const noexcept { sqlite3_finalize(st); }
  };
  std::string path_;
  std::mutex mutex_;
  std::unique_ptr<sqlite3, DbClose> db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalize> insert_;
};

}  // namespace mailgate::dmarc
