// policy/policy_store.cc — holds the current snapshot, reloads it, watches the file.
// See policy_store.h.
#include "policy/policy_store.h"

#include <sys/stat.h>

#include <optional>

#include "log/log.h"
#include "policy/sqlite.h"

namespace mailgate::policy {
namespace {

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  struct timespec mtime {};
  bool operator==(const FileId& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

// Failures worth retrying without a new change: the file was busy, not wrong.
bool is_transient(const std::string& error) {
  return error.find("database is locked") != std::string::npos ||
         error.find("database table is locked") != std::string::npos;
}

}  // namespace

namespace detail {

// The watcher's view of the file: a kept-open connection for PRAGMA data_version, plus what
// stat(2) said last time.
class FileWatch {
 public:
  explicit FileWatch(std::string path) : path_(std::move(path)) {}

  // True when the file changed since the previous call (the first call only records).
  bool changed() {
    std::optional<FileId> id = file_id(path_);
    if (!id) {
      if (present_) MG_LOG_ERROR("policy: {} is gone; keeping the current policy", path_);
      present_ = false;
      db_.reset();
      return false;
    }
    bool changed = false;
    if (!present_ || !(*id == last_id_)) {
      // Reopen whenever stat changes: a replaced file needs a new connection, and for an
      // in-place change the reload below is wanted anyway.
      changed = primed_;
      db_.reset();
    }
    present_ = true;
    last_id_ = *id;
    if (!db_) {
      auto db = open_db(path_, OpenMode::kReadWrite);
      if (!db) {
        MG_LOG_WARNING("policy: watcher cannot open {}: {}", path_, db.error());
        primed_ = true;
        return changed;
      }
      db_ = std::move(*db);
      data_version_ = -1;
    }
    auto version = query_int(db_.get(), "PRAGMA data_version");
    if (!version) {
      MG_LOG_WARNING("policy: watcher cannot read {}: {}", path_, version.error());
      db_.reset();
      primed_ = true;
      return changed;
    }
    if (data_version_ >= 0 && *version != data_version_) changed = true;
    data_version_ = *version;
    primed_ = true;
    return changed;
  }

 private:
  std::string path_;
  DbHandle db_;
  int64_t data_version_ = -1;
  FileId last_id_;
  bool present_ = false;
  bool primed_ = false;  // the first call only records the state
};

}  // namespace detail

Expected<std::unique_ptr<PolicyStore>, std::string> PolicyStore::open(Options options) {
  auto watch = std::make_unique<detail::FileWatch>(options.path);
  watch->changed();  // record the state before loading: later changes are all seen
  auto first = load_snapshot(options.path);
  if (!first) return unexpected(first.error());
  MG_LOG_INFO("policy: loaded {} (snapshot {}, {} plugins, {} local domains, {} access rules)",
              options.path, (*first)->version(), (*first)->plugins().size(),
              (*first)->local_domain_count(), (*first)->access_rules().size());
  return std::unique_ptr<PolicyStore>(
      new PolicyStore(std::move(options), std::move(*first), std::move(watch)));
}

PolicyStore::PolicyStore(Options options, SnapshotPtr first,
                         std::unique_ptr<detail::FileWatch> watch)
    : options_(std::move(options)), watch_(std::move(watch)), current_(std::move(first)) {}

PolicyStore::~PolicyStore() { stop_watching(); }

SnapshotPtr PolicyStore::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

uint64_t PolicyStore::failed_reloads() const {
  std::lock_guard lock(mu_);
  return failed_reloads_;
}

void PolicyStore::subscribe(Subscriber subscriber) {
  std::lock_guard lock(mu_);
  subscribers_.push_back(std::move(subscriber));
}

Expected<SnapshotPtr, std::string> PolicyStore::reload() {
  std::lock_guard reload_lock(reload_mu_);
  auto next = load_snapshot(options_.path);
  std::vector<Subscriber> subscribers;
  uint64_t kept = 0;
  {
    std::lock_guard lock(mu_);
    if (!next) {
      ++failed_reloads_;
      kept = current_->version();
    } else {
      current_ = *next;
      subscribers = subscribers_;
    }
  }
  if (!next) {
    MG_LOG_ERROR("policy: reload of {} refused, keeping snapshot {}: {}", options_.path, kept,
                 next.error());
    return unexpected(next.error());
  }
  MG_LOG_INFO("policy: reloaded {} (snapshot {}, {} plugins, {} local domains, {} access rules)",
              options_.path, (*next)->version(), (*next)->plugins().size(),
              (*next)->local_domain_count(), (*next)->access_rules().size());
  for (const Subscriber& s : subscribers) s(*next);
  return std::move(*next);
}

void PolicyStore::start_watching() {
  std::lock_guard lock(watch_mu_);
  if (watcher_.joinable()) return;
  stop_ = false;
  watcher_ = std::thread([this] { watch_loop(); });
}

void PolicyStore::stop_watching() {
  std::thread t;
  {
    std::lock_guard lock(watch_mu_);
    stop_ = true;
    t = std::move(watcher_);
  }
  watch_cv_.notify_all();
  if (t.joinable()) t.join();
}

void PolicyStore::watch_loop() {
  bool retry = false;  // the last reload failed for a transient reason
  std::unique_lock lock(watch_mu_);
  while (!stop_) {
    watch_cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    bool changed = watch_->changed();
    if (changed || retry) {
      if (changed) MG_LOG_INFO("policy: {} changed; reloading", options_.path);
      auto r = reload();  // logs its own outcome
      retry = !r && is_transient(r.error());
    }
    lock.lock();
  }
}

}  // namespace mailgate::policy
