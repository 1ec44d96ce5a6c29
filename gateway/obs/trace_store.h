// obs/trace_store.h — the transaction trace in SQLite: schema, batched inserts, retention and
// the queries behind `mailgatectl trace`.
// Owns: the trace database file (WAL journal, synchronous=NORMAL: a crash may lose the last
// batch, never corrupt the file) and its schema (PRAGMA user_version 1). Tables: `trace`, one
// row per transaction (symbols and plugin actions as JSON arrays), and `trace_rcpt`, one row
// per recipient, so every searchable field has an index.
// Threading: one TraceStore per thread (the writer thread, or mailgatectl). Readers in other
// processes see committed batches at once (WAL).
// Must not touch: the policy database.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "obs/trace_record.h"
#include "policy/sqlite.h"
#include "util/expected.h"

namespace mailgate::obs {

// What to look for; every given field must match (exact, case-insensitive for addresses).
struct TraceQuery {
  std::optional<std::string> sender;
  std::optional<std::string> recipient;
  std::optional<std::string> client_ip;
  std::optional<std::string> message_id;  // with or without <>
  std::optional<std::string> queue_id;
  std::optional<std::string> status;
  std::optional<int64_t> since_ms;  // time_ms >= since
  std::optional<int64_t> until_ms;  // time_ms <= until
  size_t limit = 50;                // newest first
};

class TraceStore {
 public:
  enum class Mode { kWriter, kReader };
  // Opens `path`. A writer creates the file and the schema when missing; a reader refuses a
  // missing file. Errors read "trace database 'PATH': REASON".
  static Expected<TraceStore, std::string> open(const std::string& path, Mode mode);

  // Inserts `records` in one transaction; returns the error text on failure (nothing stored).
  Expected<bool, std::string> insert(const std::vector<TraceRecord>& records);
  // Deletes rows older than `now - retention` and the oldest beyond `max_rows`. Returns the
  // number of transactions deleted.
  Expected<int64_t, std::string> prune(int64_t now_ms, std::chrono::hours retention,
                                       int64_t max_rows);
  Expected<std::vector<TraceRecord>, std::string> find(const TraceQuery& q);
  Expected<int64_t, std::string> count();

  const std::string& path() const { return path_; }

 private:
  TraceStore(std::string path, policy::DbHandle db) : path_(std::move(path)), db_(std::move(db)) {}
  std::string error(const std::string& what) const;
  std::string path_;
  policy::DbHandle db_;
};

}  // namespace mailgate::obs
