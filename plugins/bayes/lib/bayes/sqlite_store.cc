// plugins/bayes/lib/bayes/sqlite_store.cc — the SQLite token store. See sqlite_store.h.
#include "bayes/sqlite_store.h"

#include <ctime>
#include <stdexcept>

#include "bayes/tokenizer.h"

namespace mailgate::bayes {
namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS bayes_tokens (
  token TEXT PRIMARY KEY,
  spam  INTEGER NOT NULL DEFAULT 0,
  ham   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bayes_totals (
  label    TEXT PRIMARY KEY CHECK (label IN ('spam', 'ham')),
  messages INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bayes_learned (
  digest     TEXT PRIMARY KEY,
  label      TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
  learned_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bayes_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
)sql";

const char* label_text(Label label) { return label == Label::kSpam ? "spam" : "ham"; }

}  // namespace

SqliteTokenStore::SqliteTokenStore(const std::string& path, int busy_timeout_ms, bool read_only)
    : path_(path) {
  sqlite3* raw = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK)
    throw std::runtime_error("Bayes database " + path + ": " +
                             (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(db_.get(), busy_timeout_ms);
  std::string e;
  if (!read_only) {
    e = exec("PRAGMA journal_mode=WAL");
    if (e.empty()) e = exec("PRAGMA synchronous=NORMAL");
    if (e.empty()) e = exec("BEGIN IMMEDIATE");
    if (e.empty()) e = exec(kSchema);
    if (e.empty()) e = exec("PRAGMA user_version=1");
    if (e.empty()) {
      const std::string sql =
          "INSERT OR IGNORE INTO bayes_meta(key, value) VALUES "
          "('tokenizer_version', '" +
          std::to_string(kTokenizerVersion) + "')";
      e = exec(sql.c_str());
    }
    if (e.empty()) e = exec("COMMIT");
    if (!e.empty()) {
      exec("ROLLBACK");
      throw std::runtime_error(e);
    }
  }
  Stmt version(prepare("SELECT value FROM bayes_meta WHERE key = 'tokenizer_version'"));
  if (!version) throw std::runtime_error(error("is not a Bayes database"));
  if (sqlite3_step(version.get()) == SQLITE_ROW) {
    const char* v = reinterpret_cast<const char*>(sqlite3_column_text(version.get(), 0));
    if (v == nullptr || std::string(v) != std::to_string(kTokenizerVersion))
      throw std::runtime_error("Bayes database " + path + " was learned with tokenizer version " +
                               (v ? v : "?") + ", this build has version " +
                               std::to_string(kTokenizerVersion) + ": learn into a new file");
  }
  select_token_ = prepare("SELECT spam, ham FROM bayes_tokens WHERE token = ?1");
  select_totals_ = prepare("SELECT label, messages FROM bayes_totals");
  select_learned_ = prepare("SELECT label FROM bayes_learned WHERE digest = ?1");
  if (!read_only) {
    upsert_token_ = prepare(
        "INSERT INTO bayes_tokens(token, spam, ham) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(token) DO UPDATE SET spam = spam + excluded.spam, ham = ham + excluded.ham");
    prune_token_ = prepare("DELETE FROM bayes_tokens WHERE token = ?1 AND spam <= 0 AND ham <= 0");
    upsert_total_ = prepare(
        "INSERT INTO bayes_totals(label, messages) VALUES (?1, ?2) "
        "ON CONFLICT(label) DO UPDATE SET messages = messages + excluded.messages");
    upsert_learned_ = prepare(
        "INSERT INTO bayes_learned(digest, label, learned_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(digest) DO UPDATE SET label = excluded.label, "
        "learned_at = excluded.learned_at");
  }
  if (!select_token_ || !select_totals_ || !select_learned_ ||
      (!read_only && (!upsert_token_ || !prune_token_ || !upsert_total_ || !upsert_learned_)))
    throw std::runtime_error(error("cannot prepare its statements"));
}

SqliteTokenStore::Stmt SqliteTokenStore::prepare(const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql, -1, &st, nullptr) != SQLITE_OK) return Stmt();
  return Stmt(st);
}

std::string SqliteTokenStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message) == SQLITE_OK) return std::string();
  std::string e = "Bayes database " + path_ + ": " + (message ? message : "error");
  sqlite3_free(message);
  return e;
}

std::string SqliteTokenStore::error(const char* what) const {
  return "Bayes database " + path_ + " " + what + ": " + sqlite3_errmsg(db_.get());
}

std::string SqliteTokenStore::read_totals(Totals& totals) {
  totals = Totals{};
  sqlite3_stmt* st = select_totals_.get();
  sqlite3_reset(st);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char* label = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const std::int64_t n = sqlite3_column_int64(st, 1);
    if (label != nullptr && std::string_view(label) == "spam") totals.spam = n;
    if (label != nullptr && std::string_view(label) == "ham") totals.ham = n;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? std::string() : error("cannot read the totals");
}

std::string SqliteTokenStore::totals(Totals& totals) {
  std::lock_guard<std::mutex> lock(mutex_);
  return read_totals(totals);
}

std::string SqliteTokenStore::lookup(const std::vector<std::string>& tokens,
                                     std::vector<TokenCounts>& counts, Totals& totals) {
  std::lock_guard<std::mutex> lock(mutex_);
  counts.assign(tokens.size(), TokenCounts{});
  // One read transaction: the counts and the totals are of one moment.
  const bool own_txn = !in_batch_;
  if (own_txn) {
    if (std::string e = exec("BEGIN"); !e.empty()) return e;
  }
  std::string e = read_totals(totals);
  sqlite3_stmt* st = select_token_.get();
  for (std::size_t i = 0; i < tokens.size() && e.empty(); ++i) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, tokens[i].data(), static_cast<int>(tokens[i].size()), SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      counts[i].spam = sqlite3_column_int64(st, 0);
      counts[i].ham = sqlite3_column_int64(st, 1);
    } else if (rc != SQLITE_DONE) {
      e = error("cannot read a token");
    }
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (own_txn) exec("COMMIT");
  return e;
}

std::string SqliteTokenStore::add_counts(const std::vector<std::string>& tokens, Label label,
                                         int delta) {
  sqlite3_stmt* up = upsert_token_.get();
  for (const std::string& token : tokens) {
    sqlite3_reset(up);
    sqlite3_bind_text(up, 1, token.data(), static_cast<int>(token.size()), SQLITE_STATIC);
    sqlite3_bind_int(up, 2, label == Label::kSpam ? delta : 0);
    sqlite3_bind_int(up, 3, label == Label::kHam ? delta : 0);
    if (sqlite3_step(up) != SQLITE_DONE) {
      sqlite3_reset(up);
      return error("cannot count a token");
    }
    if (delta < 0) {
      sqlite3_stmt* prune = prune_token_.get();
      sqlite3_reset(prune);
      sqlite3_bind_text(prune, 1, token.data(), static_cast<int>(token.size()), SQLITE_STATIC);
      const int rc = sqlite3_step(prune);
      sqlite3_reset(prune);
      if (rc != SQLITE_DONE) return error("cannot prune a token");
    }
  }
  sqlite3_reset(up);
  sqlite3_stmt* total = upsert_total_.get();
  sqlite3_reset(total);
  sqlite3_bind_text(total, 1, label_text(label), -1, SQLITE_STATIC);
  sqlite3_bind_int(total, 2, delta);
  const int rc = sqlite3_step(total);
  sqlite3_reset(total);
  return rc == SQLITE_DONE ? std::string() : error("cannot count the message");
}

std::string SqliteTokenStore::learn(const std::vector<std::string>& tokens, Label label,
                                    const std::string& digest, LearnOutcome& outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!upsert_token_) return "Bayes database " + path_ + " is open read-only";
  const bool own_txn = !in_batch_;
  // IMMEDIATE: take the write lock now (waiting up to the busy timeout), not halfway. In a
  // batch, a savepoint undoes a message that fails halfway.
  if (std::string e = exec(own_txn ? "BEGIN IMMEDIATE" : "SAVEPOINT learn_one"); !e.empty())
    return e;
  const char* undo = own_txn ? "ROLLBACK" : "ROLLBACK TO learn_one; RELEASE learn_one";
  std::string e;
  sqlite3_stmt* sel = select_learned_.get();
  sqlite3_reset(sel);
  sqlite3_bind_text(sel, 1, digest.data(), static_cast<int>(digest.size()), SQLITE_STATIC);
  int rc = sqlite3_step(sel);
  std::string previous;
  if (rc == SQLITE_ROW) {
    const char* p = reinterpret_cast<const char*>(sqlite3_column_text(sel, 0));
    previous = p ? p : "";
  } else if (rc != SQLITE_DONE) {
    e = error("cannot read the learned messages");
  }
  sqlite3_reset(sel);
  if (e.empty() && previous == label_text(label)) {
    outcome = LearnOutcome::kAlreadyKnown;
    exec(undo);
    return std::string();
  }
  const bool relearn = !previous.empty();
  const Label other = label == Label::kSpam ? Label::kHam : Label::kSpam;
  if (e.empty() && relearn) e = add_counts(tokens, other, -1);
  if (e.empty()) e = add_counts(tokens, label, +1);
  if (e.empty()) {
    sqlite3_stmt* ins = upsert_learned_.get();
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, digest.data(), static_cast<int>(digest.size()), SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, label_text(label), -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, static_cast<sqlite3_int64>(std::time(nullptr)));
    rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) e = error("cannot record the learned message");
  }
  if (!e.empty()) {
    exec(undo);
    return e;
  }
  if (std::string c = exec(own_txn ? "COMMIT" : "RELEASE learn_one"); !c.empty()) {
    exec(undo);
    return c;
  }
  outcome = relearn ? LearnOutcome::kRelearned : LearnOutcome::kLearned;
  return std::string();
}

std::string SqliteTokenStore::begin_batch() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_batch_) return std::string();
  std::string e = exec("BEGIN IMMEDIATE");
  in_batch_ = e.empty();
  return e;
}

std::string SqliteTokenStore::end_batch() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!in_batch_) return std::string();
  in_batch_ = false;
  std::string e = exec("COMMIT");
  if (!e.empty()) exec("ROLLBACK");
  return e;
}

}  // namespace mailgate::bayes
