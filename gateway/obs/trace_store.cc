// obs/trace_store.cc — see trace_store.h.
#include "obs/trace_store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace mailgate::obs {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS trace (
  id          INTEGER PRIMARY KEY,
  time_ms     INTEGER NOT NULL,
  session     TEXT NOT NULL,
  profile     TEXT NOT NULL,
  client_ip   TEXT NOT NULL,
  client_name TEXT NOT NULL,
  helo        TEXT NOT NULL,
  sender      TEXT NOT NULL COLLATE NOCASE,
  message_id  TEXT NOT NULL,
  queue_id    TEXT NOT NULL,
  stage       TEXT NOT NULL,
  status      TEXT NOT NULL,
  reply       TEXT NOT NULL,
  decided_by  TEXT NOT NULL,
  score       REAL NOT NULL,
  size        INTEGER NOT NULL,
  delay_ms    INTEGER NOT NULL,
  symbols     TEXT NOT NULL,
  actions     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trace_rcpt (
  trace_id INTEGER NOT NULL,
  address  TEXT NOT NULL COLLATE NOCASE
);
CREATE INDEX IF NOT EXISTS trace_time ON trace(time_ms);
CREATE INDEX IF NOT EXISTS trace_sender ON trace(sender);
CREATE INDEX IF NOT EXISTS trace_client ON trace(client_ip);
CREATE INDEX IF NOT EXISTS trace_message_id ON trace(message_id);
CREATE INDEX IF NOT EXISTS trace_queue_id ON trace(queue_id);
CREATE INDEX IF NOT EXISTS trace_rcpt_address ON trace_rcpt(address);
CREATE INDEX IF NOT EXISTS trace_rcpt_trace ON trace_rcpt(trace_id);
)sql";

std::string symbols_json(const std::vector<TraceSymbol>& symbols) {
  nlohmann::json a = nlohmann::json::array();
  for (const TraceSymbol& s : symbols)
    a.push_back({{"name", s.name}, {"score", s.score}, {"detail", s.detail}, {"plugin", s.plugin}});
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string actions_json(const std::vector<TraceAction>& actions) {
  nlohmann::json a = nlohmann::json::array();
  for (const TraceAction& x : actions) {
    nlohmann::json o = {
        {"plugin", x.plugin}, {"stage", x.stage}, {"action", x.action}, {"ms", x.ms}};
    if (!x.reply.empty()) o["reply"] = x.reply;
    if (!x.note.empty()) o["note"] = x.note;
    a.push_back(std::move(o));
  }
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<TraceSymbol> parse_symbols(const std::string& text) {
  std::vector<TraceSymbol> out;
  nlohmann::json a = nlohmann::json::parse(text, nullptr, false);
  if (!a.is_array()) return out;
  for (const auto& o : a) {
    if (!o.is_object()) continue;
    out.push_back(
        {o.value("name", ""), o.value("score", 0.0), o.value("detail", ""), o.value("plugin", "")});
  }
  return out;
}

std::vector<TraceAction> parse_actions(const std::string& text) {
  std::vector<TraceAction> out;
  nlohmann::json a = nlohmann::json::parse(text, nullptr, false);
  if (!a.is_array()) return out;
  for (const auto& o : a) {
    if (!o.is_object()) continue;
    out.push_back({o.value("plugin", ""), o.value("stage", ""), o.value("action", ""),
                   o.value("reply", ""), o.value("note", ""), o.value("ms", 0.0)});
  }
  return out;
}

std::string text_col(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
}

}  // namespace

std::string TraceStore::error(const std::string& what) const {
  return "trace database '" + path_ + "': " + what;
}

Expected<TraceStore, std::string> TraceStore::open(const std::string& path, Mode mode) {
  auto fail = [&](const std::string& why) {
    return unexpected("trace database '" + path + "': " + why);
  };
  sqlite3* raw = nullptr;
  int flags =
      mode == Mode::kWriter ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  policy::DbHandle db(raw);
  if (rc != SQLITE_OK) return fail(raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  sqlite3_busy_timeout(db.get(), 5000);
  if (mode == Mode::kWriter) {
    if (auto r = policy::exec(db.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !r)
      return fail(r.error());
  }
  auto version = policy::query_int(db.get(), "PRAGMA user_version");
  if (!version) return fail(version.error());
  if (*version > kSchemaVersion)
    return fail("schema version " + std::to_string(*version) + " is newer than this build's " +
                std::to_string(kSchemaVersion));
  if (mode == Mode::kWriter && *version < kSchemaVersion) {
    auto tx = policy::Transaction::begin(db.get(), policy::Transaction::Kind::kImmediate);
    if (!tx) return fail(tx.error());
    if (auto r = policy::exec(db.get(), kSchema); !r) return fail(r.error());
    if (auto r = policy::exec(db.get(), "PRAGMA user_version = " + std::to_string(kSchemaVersion));
        !r)
      return fail(r.error());
    if (auto r = tx->commit(); !r) return fail(r.error());
  } else if (mode == Mode::kReader && *version == 0) {
    return fail("not a trace database (no schema; is --trace_db set on the gateway?)");
  }
  return TraceStore(path, std::move(db));
}

Expected<bool, std::string> TraceStore::insert(const std::vector<TraceRecord>& records) {
  auto tx = policy::Transaction::begin(db_.get(), policy::Transaction::Kind::kImmediate);
  if (!tx) return unexpected(error(tx.error()));
  auto row = policy::prepare(
      db_.get(),
      "INSERT INTO trace (time_ms, session, profile, client_ip, client_name, helo, sender, "
      "message_id, queue_id, stage, status, reply, decided_by, score, size, delay_ms, symbols, "
      "actions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
      "?17, ?18)");
  if (!row) return unexpected(error(row.error()));
  auto rcpt =
      policy::prepare(db_.get(), "INSERT INTO trace_rcpt (trace_id, address) VALUES (?1, ?2)");
  if (!rcpt) return unexpected(error(rcpt.error()));
  for (const TraceRecord& r : records) {
    sqlite3_stmt* st = row->get();
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, r.time_ms);
    policy::bind_text(st, 2, r.session);
    policy::bind_text(st, 3, r.profile);
    policy::bind_text(st, 4, r.client_ip);
    policy::bind_text(st, 5, r.client_name);
    policy::bind_text(st, 6, r.helo);
    policy::bind_text(st, 7, r.sender);
    policy::bind_text(st, 8, r.message_id);
    policy::bind_text(st, 9, r.queue_id);
    policy::bind_text(st, 10, r.stage);
    policy::bind_text(st, 11, r.status);
    policy::bind_text(st, 12, r.reply);
    policy::bind_text(st, 13, r.decided_by);
    sqlite3_bind_double(st, 14, r.score);
    sqlite3_bind_int64(st, 15, static_cast<int64_t>(r.size));
    sqlite3_bind_int64(st, 16, r.delay_ms);
    policy::bind_text(st, 17, symbols_json(r.symbols));
    policy::bind_text(st, 18, actions_json(r.actions));
    if (sqlite3_step(st) != SQLITE_DONE) return unexpected(error(sqlite3_errmsg(db_.get())));
    int64_t id = sqlite3_last_insert_rowid(db_.get());
    for (const std::string& a : r.recipients) {
      sqlite3_stmt* rs = rcpt->get();
      sqlite3_reset(rs);
      sqlite3_bind_int64(rs, 1, id);
      policy::bind_text(rs, 2, a);
      if (sqlite3_step(rs) != SQLITE_DONE) return unexpected(error(sqlite3_errmsg(db_.get())));
    }
  }
  if (auto c = tx->commit(); !c) return unexpected(error(c.error()));
  return true;
}

Expected<int64_t, std::string> TraceStore::prune(int64_t now_ms, std::chrono::hours retention,
                                                 int64_t max_rows) {
  // Row ids grow with time (the writer inserts in arrival order), so both bounds become "every
  // id up to X", which deletes recipients with their transactions without a join.
  int64_t cutoff = 0;
  {
    auto st = policy::prepare(db_.get(), "SELECT max(id) FROM trace WHERE time_ms < ?1");
    if (!st) return unexpected(error(st.error()));
    sqlite3_bind_int64(
        st->get(), 1,
        now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(retention).count());
    if (sqlite3_step(st->get()) == SQLITE_ROW && sqlite3_column_type(st->get(), 0) != SQLITE_NULL)
      cutoff = sqlite3_column_int64(st->get(), 0);
  }
  {
    auto st = policy::prepare(db_.get(), "SELECT id FROM trace ORDER BY id DESC LIMIT 1 OFFSET ?1");
    if (!st) return unexpected(error(st.error()));
    sqlite3_bind_int64(st->get(), 1, max_rows);
    if (sqlite3_step(st->get()) == SQLITE_ROW)
      cutoff = std::max<int64_t>(cutoff, sqlite3_column_int64(st->get(), 0));
  }
  if (cutoff == 0) return int64_t{0};
  auto tx = policy::Transaction::begin(db_.get(), policy::Transaction::Kind::kImmediate);
  if (!tx) return unexpected(error(tx.error()));
  int64_t deleted = 0;
  for (const char* sql :
       {"DELETE FROM trace_rcpt WHERE trace_id <= ?1", "DELETE FROM trace WHERE id <= ?1"}) {
    auto st = policy::prepare(db_.get(), sql);
    if (!st) return unexpected(error(st.error()));
    sqlite3_bind_int64(st->get(), 1, cutoff);
    if (sqlite3_step(st->get()) != SQLITE_DONE) return unexpected(error(sqlite3_errmsg(db_.get())));
    deleted = sqlite3_changes(db_.get());
  }
  if (auto c = tx->commit(); !c) return unexpected(error(c.error()));
  return deleted;
}

Expected<int64_t, std::string> TraceStore::count() {
  auto n = policy::query_int(db_.get(), "SELECT count(*) FROM trace");
  if (!n) return unexpected(error(n.error()));
  return *n;
}

Expected<std::vector<TraceRecord>, std::string> TraceStore::find(const TraceQuery& q) {
  std::string sql =
      "SELECT id, time_ms, session, profile, client_ip, client_name, helo, sender, message_id, "
      "queue_id, stage, status, reply, decided_by, score, size, delay_ms, symbols, actions "
      "FROM trace WHERE 1";
  std::vector<std::string> binds;
  auto add = [&](const std::optional<std::string>& v, const char* clause) {
    if (!v) return;
    sql += clause;
    binds.push_back(*v);
  };
  add(q.sender, " AND sender = ?");
  add(q.client_ip, " AND client_ip = ?");
  std::optional<std::string> mid;
  if (q.message_id) mid = normalize_message_id(*q.message_id);
  add(mid, " AND message_id = ?");
  add(q.queue_id, " AND queue_id = ?");
  add(q.status, " AND status = ?");
  add(q.recipient, " AND id IN (SELECT trace_id FROM trace_rcpt WHERE address = ?)");
  if (q.since_ms) sql += " AND time_ms >= " + std::to_string(*q.since_ms);
  if (q.until_ms) sql += " AND time_ms <= " + std::to_string(*q.until_ms);
  sql += " ORDER BY id DESC LIMIT " + std::to_string(q.limit);
  auto st = policy::prepare(db_.get(), sql);
  if (!st) return unexpected(error(st.error()));
  for (size_t i = 0; i < binds.size(); ++i)
    policy::bind_text(st->get(), static_cast<int>(i + 1), binds[i]);
  auto rcpts = policy::prepare(db_.get(),
                               "SELECT address FROM trace_rcpt WHERE trace_id = ?1 ORDER BY rowid");
  if (!rcpts) return unexpected(error(rcpts.error()));
  std::vector<TraceRecord> out;
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
    sqlite3_stmt* s = st->get();
    TraceRecord r;
    r.id = sqlite3_column_int64(s, 0);
    r.time_ms = sqlite3_column_int64(s, 1);
    r.session = text_col(s, 2);
    r.profile = text_col(s, 3);
    r.client_ip = text_col(s, 4);
    r.client_name = text_col(s, 5);
    r.helo = text_col(s, 6);
    r.sender = text_col(s, 7);
    r.message_id = text_col(s, 8);
    r.queue_id = text_col(s, 9);
    r.stage = text_col(s, 10);
    r.status = text_col(s, 11);
    r.reply = text_col(s, 12);
    r.decided_by = text_col(s, 13);
    r.score = sqlite3_column_double(s, 14);
    r.size = static_cast<uint64_t>(sqlite3_column_int64(s, 15));
    r.delay_ms = sqlite3_column_int64(s, 16);
    r.symbols = parse_symbols(text_col(s, 17));
    r.actions = parse_actions(text_col(s, 18));
    sqlite3_reset(rcpts->get());
    sqlite3_bind_int64(rcpts->get(), 1, r.id);
    while (sqlite3_step(rcpts->get()) == SQLITE_ROW)
      r.recipients.push_back(text_col(rcpts->get(), 0));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return unexpected(error(sqlite3_errmsg(db_.get())));
  return out;
}

}  // namespace mailgate::obs
