// server/plugin_host.h — the daemon's plugin machinery in one place: the policy store (with
// its file watcher), the DNS resolver behind the SDK's dns_query, the counter store (memory
// or Redis) behind counter_add/rate_limit/kv_*, the worker pool for blocking plugins, and the
// current plugin chain of every listener profile, rebuilt whenever a new policy snapshot
// arrives.
// Owns: those objects and the glue between policy rows and chain specs.
// Must not touch: sessions (they ask chain_for() once, at connect) or the SMTP protocol.
// Threading: chain_for() and reload() from any thread; rebuilds run on the policy watcher
// thread or the caller of reload(), serialised by the store.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chain/chain.h"
#include "dns/resolver_config.h"
#include "smtp/session.h"
#include "store/store_config.h"
#include "util/expected.h"

namespace mailgate::dns {
class Resolver;
}
namespace mailgate::policy {
class PolicyStore;
class Snapshot;
}  // namespace mailgate::policy

namespace mailgate::server {

struct PluginHostOptions {
  std::string policy_db;                 // created on first run when missing
  std::string plugin_dir;                // relative plugin paths are resolved here
  std::vector<std::string> profiles;     // listener profiles that need a chain
  size_t worker_threads = 4;
  size_t worker_queue = 1024;
  dns::ResolverConfig dns;
  std::chrono::milliseconds policy_poll{1000};
  store::StoreConfig store;  // counters, rate limits, records: memory or Redis
};

class PluginHost {
 public:
  // Opens (or creates) the policy database, starts the resolver, loads every profile's chain.
  // Any failure is fatal at start-up: the error names the database row, plugin or flag.
  static Expected<std::unique_ptr<PluginHost>, std::string> start(PluginHostOptions options);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // The chain new sessions of `profile` run (empty binding when none is configured).
  smtp::ChainBinding chain_for(const std::string& profile) const;
  // SIGHUP: re-reads the policy database now (a bad edit keeps the running policy).
  void reload();

 private:
  PluginHost() = default;
  // Builds chains for every profile from `snapshot`; on failure keeps the current ones.
  Expected<bool, std::string> rebuild(const std::shared_ptr<const policy::Snapshot>& snapshot);

  PluginHostOptions options_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::unique_ptr<store::Store> counters_;
  std::unique_ptr<chain::WorkerPool> pool_;
  chain::PluginCache cache_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const chain::Chain>> chains_;
  // The snapshot the chains were built from: plugins' policy lookups read this one, so an
  // edit whose chain cannot be built is refused as a whole (rules and chain together).
  std::shared_ptr<const policy::Snapshot> active_;
  std::unique_ptr<policy::PolicyStore> store_;  // last: its watcher calls rebuild()
};

}  // namespace mailgate::server
