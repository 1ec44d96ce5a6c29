// plugins/dmarc/history_db.cc — the aggregate-report history in SQLite (see history_db.h).
#include "history_db.h"

#include <stdexcept>

namespace mailgate::dmarc {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS dmarc_history (
  id               INTEGER PRIMARY KEY,
  date             INTEGER NOT NULL,   -- Unix time of the evaluation
  tx_id            TEXT NOT NULL,
  source_ip        TEXT NOT NULL,
  helo             TEXT NOT NULL,
  header_from      TEXT NOT NULL,
  envelope_from    TEXT NOT NULL,
  envelope_to      TEXT NOT NULL,
  policy_domain    TEXT NOT NULL,
  record           TEXT NOT NULL,
  p                TEXT NOT NULL,
  sp               TEXT NOT NULL,
  pct              INTEGER NOT NULL,   -- -1 without a record
  adkim            TEXT NOT NULL,
  aspf             TEXT NOT NULL,
  rua              TEXT NOT NULL,
  result           TEXT NOT NULL,      -- pass, fail, none, temperror, permerror
  policy_requested TEXT NOT NULL,
  disposition      TEXT NOT NULL,      -- none, quarantine, reject (applied)
  override_reason  TEXT NOT NULL,      -- '', sampled_out, local_policy
  dkim_aligned     TEXT NOT NULL,      -- pass, fail
  spf_aligned      TEXT NOT NULL,      -- pass, fail
  dkim             TEXT NOT NULL,      -- JSON array of {domain, selector, result, aligned}
  spf_domain       TEXT NOT NULL,
  spf_scope        TEXT NOT NULL,      -- mfrom, helo, ''
  spf_result       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dmarc_history_domain_date ON dmarc_history (policy_domain, date);
PRAGMA user_version = 1;
)sql";

constexpr const char* kInsert =
    "INSERT INTO dmarc_history (date, tx_id, source_ip, helo, header_from, envelope_from, "
    "envelope_to, policy_domain, record, p, sp, pct, adkim, aspf, rua, result, "
    "policy_requested, disposition, override_reason, dkim_aligned, spf_aligned, dkim, "
    "spf_domain, spf_scope, spf_result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

}  // namespace

HistoryDb::HistoryDb(const std::string& path) : path_(path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  db_.reset(raw);
  const auto fail = [&](const std::string& what) {
    const std::string message = db_ ? sqlite3_errmsg(db_.get()) : "out of memory";
    throw std::runtime_error("setting \"history_db\": " + what + " \"" + path + "\": " + message);
  };
  if (rc != SQLITE_OK) fail("cannot open");
  sqlite3_busy_timeout(db_.get(), 5000);
  char* err = nullptr;
  if (sqlite3_exec(db_.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr,
                   nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    fail("cannot switch to WAL mode in");
  }
  if (sqlite3_exec(db_.get(), kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    fail("cannot create table dmarc_history in");
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_.get(), kInsert, -1, &st, nullptr) != SQLITE_OK)
    fail("cannot prepare the insert into dmarc_history of");
  insert_.reset(st);
}

std::string HistoryDb::record(const HistoryRow& row) {
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3_stmt* st = insert_.get();
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  int i = 0;
  const auto text = [&](const std::string& value) {
    sqlite3_bind_text(st, ++i, value.c_str(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  };
  sqlite3_bind_int64(st, ++i, row.date);
  text(row.tx_id);
  text(row.source_ip);
  text(row.helo);
  text(row.header_from);
  text(row.envelope_from);
  text(row.envelope_to);
  text(row.policy_domain);
  text(row.record);
  text(row.p);
  text(row.sp);
  sqlite3_bind_int(st, ++i, row.pct);
  text(row.adkim);
  text(row.aspf);
  text(row.rua);
  text(row.result);
  text(row.policy_requested);
  text(row.disposition);
  text(row.override_reason);
  text(row.dkim_aligned);
  text(row.spf_aligned);
  text(row.dkim);
  text(row.spf_domain);
  text(row.spf_scope);
  text(row.spf_result);
  const int rc = sqlite3_step(st);
  std::string error;
  if (rc != SQLITE_DONE)
    error = "cannot record the message in \"" + path_ + "\": " + sqlite3_errmsg(db_.get());
  sqlite3_reset(st);
  return error;
}

}  // namespace mailgate::dmarc
