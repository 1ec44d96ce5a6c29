// server/plugin_host.cc — see plugin_host.h.
#include "server/plugin_host.h"

#include "chain/host_services.h"
#include "dns/resolver.h"
#include "log/log.h"
#include "obs/sources.h"
#include "policy/bootstrap.h"
#include "policy/policy_store.h"
#include "policy/snapshot.h"
#include "server/chain_specs.h"
#include "server/plugin_dns.h"

namespace mailgate::server {

Expected<std::unique_ptr<PluginHost>, std::string> PluginHost::start(PluginHostOptions options) {
  std::unique_ptr<PluginHost> host(new PluginHost());
  host->options_ = std::move(options);
  const PluginHostOptions& o = host->options_;

  auto resolver = dns::Resolver::create(o.dns);
  if (!resolver) return unexpected("DNS resolver: " + resolver.error());
  host->resolver_ = std::move(*resolver);
  obs::set_dns_source([r = host->resolver_.get()] { return r->metrics(); });  // for /metrics
  host->pool_ = std::make_unique<chain::WorkerPool>(o.worker_threads, o.worker_queue);

  auto created = policy::create_or_migrate(o.policy_db);
  if (!created) return unexpected("--policy_db: " + created.error());
  if (created->from_version == 0)
    MG_LOG_INFO("created policy database {} (schema version {})", o.policy_db,
                created->to_version);

  host->counters_ = store::make_store(o.store, store::SystemClock::instance());
  chain::HostEnvironment env;
  env.counters = host->counters_.get();
  env.store_fail_open = o.store.fail_open;
  use_resolver(env, host->resolver_.get());
  PluginHost* self = host.get();
  env.policy = [self](std::string_view table, std::string_view key, std::string* value) {
    std::shared_ptr<const policy::Snapshot> snap;
    {
      std::lock_guard lock(self->mu_);
      snap = self->active_;
    }
    return snap && snap->lookup(table, key, value);
  };
  chain::set_host_environment(std::move(env));

  policy::PolicyStore::Options store_options;
  store_options.path = o.policy_db;
  store_options.poll_interval = o.policy_poll;
  auto store = policy::PolicyStore::open(store_options);
  if (!store) return unexpected("--policy_db: " + store.error());
  auto built = host->rebuild((*store)->current());
  if (!built) return unexpected("policy " + o.policy_db + ": " + built.error());
  host->store_ = std::move(*store);
  host->store_->subscribe([self](const policy::SnapshotPtr& snapshot) {
    auto r = self->rebuild(snapshot);
    if (!r)
      MG_LOG_ERROR("policy version {}: plugin chain not rebuilt, keeping the running one: {}",
                   snapshot->version(), r.error());
  });
  host->store_->start_watching();
  return host;
}

PluginHost::~PluginHost() {
  obs::set_dns_source({});
  if (store_) store_->stop_watching();
  store_.reset();
  std::lock_guard lock(mu_);
  chains_.clear();  // plugin states are destroyed when the last session lets go
}

Expected<bool, std::string> PluginHost::rebuild(
    const std::shared_ptr<const policy::Snapshot>& snapshot_ptr) {
  const policy::Snapshot& snapshot = *snapshot_ptr;
  std::map<std::string, std::shared_ptr<const chain::Chain>> fresh;
  size_t plugins = 0;
  for (const std::string& profile : options_.profiles) {
    if (fresh.count(profile)) continue;
    std::vector<chain::PluginSpec> specs = chain_specs_for(snapshot, profile, options_.plugin_dir);
    auto chain = chain::Chain::build(specs, cache_);
    if (!chain) return unexpected("profile '" + profile + "': " + chain.error());
    plugins += specs.size();
    fresh[profile] = std::move(*chain);
  }
  {
    std::lock_guard lock(mu_);
    chains_.swap(fresh);
    active_ = snapshot_ptr;
  }
  MG_LOG_INFO("policy version {}: plugin chains ready ({} profiles, {} plugin instances)",
              snapshot.version(), options_.profiles.size(), plugins);
  // `fresh` now holds the old chains: they go when their last session ends.
  return true;
}

smtp::ChainBinding PluginHost::chain_for(const std::string& profile) const {
  std::lock_guard lock(mu_);
  auto it = chains_.find(profile);
  smtp::ChainBinding b;
  if (it != chains_.end() && !it->second->empty()) {
    b.chain = it->second;
    b.pool = pool_.get();
  }
  return b;
}

void PluginHost::reload() {
  auto r = store_->reload();
  if (!r) MG_LOG_ERROR("policy reload failed, keeping the running policy: {}", r.error());
}

}  // namespace mailgate::server
