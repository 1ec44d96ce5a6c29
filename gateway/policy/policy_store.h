// policy/policy_store.h — the gateway's current policy snapshot and how it is replaced.
// Owns: the current std::shared_ptr<const Snapshot>, reload() (SIGHUP and the watcher call it),
// and the watcher thread that notices changes to the database file and reloads.
//
// Change detection (every poll interval, on the watcher thread):
//   * PRAGMA data_version on a connection kept open to the file: it changes whenever another
//     connection (mailgatectl, the sqlite3 shell) commits, in WAL and rollback-journal mode;
//   * stat(2) of the path: a different inode/device (the file was replaced, e.g. `mv new.db
//     policy.db`), or a different mtime/size, reopens the kept connection and reloads.
// A reload that fails (missing file, migration error, any invalid row) keeps the previous
// snapshot and logs the exact problems with MG_LOG_ERROR. The watcher does not retry a refused
// edit until the file changes again (so a broken edit is logged once), but does retry on the
// next poll when the failure was transient (the database locked by a long write).
// Sessions hold the snapshot they started with, so a swap never disturbs a transaction in
// flight and never drops a connection.
// Threading: current(), reload() and subscribe() are safe from any thread. Reloads are
// serialised; subscribers run on the reloading thread after the swap (under the reload lock,
// so they see snapshots in order, but not under the lock current() takes).
// Must not touch: the chain or sessions (they subscribe or call current()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policy/snapshot.h"
#include "util/expected.h"

namespace mailgate::policy {

namespace detail {
class FileWatch;  // policy_store.cc: data_version + stat(2) change detection
}

class PolicyStore {
 public:
  struct Options {
    std::string path;                               // the SQLite file; must exist
    std::chrono::milliseconds poll_interval{1000};  // watcher period
  };
  using Subscriber = std::function<void(const SnapshotPtr&)>;

  // Loads the first snapshot (migrating the schema if needed). Fails, with the message naming
  // the file or the rows at fault, when it cannot: the gateway must not start without policy.
  static Expected<std::unique_ptr<PolicyStore>, std::string> open(Options options);

  ~PolicyStore();  // stops the watcher
  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // The snapshot to use now. Cheap (a mutex and a shared_ptr copy): take one per session or
  // transaction, not per lookup.
  SnapshotPtr current() const;

  // Re-reads the database now. On success swaps it in, notifies subscribers and returns the new
  // snapshot; on failure logs and returns the error, and current() is unchanged.
  Expected<SnapshotPtr, std::string> reload();

  // Called with every snapshot swapped in after this call (not with the current one), in
  // version order, on the thread that reloaded. A subscriber must not call reload().
  void subscribe(Subscriber subscriber);

  // Starts/stops the watcher thread. start_watching() is idempotent; stop_watching() joins.
  void start_watching();
  void stop_watching();

  // Number of failed reloads since open (for metrics and tests).
  uint64_t failed_reloads() const;
  const Options& options() const { return options_; }

 private:
  PolicyStore(Options options, SnapshotPtr first, std::unique_ptr<detail::FileWatch> watch);
  void watch_loop();

  const Options options_;
  // Primed before the first load, so a change made between open() and start_watching() is
  // still seen. Used only by the watcher thread once it runs.
  std::unique_ptr<detail::FileWatch> watch_;

  mutable std::mutex mu_;  // guards current_, subscribers_, failed_reloads_
  SnapshotPtr current_;
  std::vector<Subscriber> subscribers_;
  uint64_t failed_reloads_ = 0;

  std::mutex reload_mu_;  // serialises reload()

  std::mutex watch_mu_;  // guards stop_ and the thread handle
  std::condition_variable watch_cv_;
  bool stop_ = false;
  std::thread watcher_;
};

}  // namespace mailgate::policy
