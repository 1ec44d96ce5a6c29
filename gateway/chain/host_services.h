// chain/host_services.h — the mg_host table: every service the SDK promises plugins.
// Owns: the process-wide host table and the environment behind it (policy lookups, DNS,
// the store of counters, rate limits and records with its clock), which the daemon (or
// mailgatectl) installs once at start-up.
// Must not touch: the session's own state except through TxContext/CallContext.
// Threading: host functions are called from I/O threads and plugin workers; they lock the
// transaction's mutex for transaction data. The environment is set before any plugin loads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailgate/plugin.h"

namespace mailgate::store {
class Clock;
class Store;
}  // namespace mailgate::store

namespace mailgate::chain {

// A DNS answer in neutral form, produced by the daemon's resolver.
struct DnsAnswer {
  mg_dns_status status = MG_DNS_ERROR;
  bool secure = false;
  struct Record {
    std::string text;
    uint16_t preference = 0;
    uint32_t ttl = 0;
  };
  std::vector<Record> records;
};

struct HostEnvironment {
  // Generic read-only policy lookup (see mg_host.policy_lookup); empty = nothing found.
  std::function<bool(std::string_view table, std::string_view key, std::string* value)> policy;
  // Blocking DNS query through the caching resolver; empty = DNS unavailable.
  std::function<DnsAnswer(const std::string& name, mg_dns_type type)> dns;
  // The same answered from the resolver's cache alone, never waiting: nullopt when the answer
  // is not cached (a try on the I/O thread then gets MG_DNS_WOULDBLOCK); empty = no cache.
  std::function<std::optional<DnsAnswer>(const std::string& name, mg_dns_type type)> dns_cached;
  // Counters, rate limits and records (store/store.h); nullptr = an in-memory store on `clock`
  // is created. Not owned.
  store::Store* counters = nullptr;
  // The clock behind now_ms() (and the default store); nullptr = the system clock. Not owned.
  const store::Clock* clock = nullptr;
  // What store_fail_mode() answers: --redis_fail_mode=open.
  bool store_fail_open = false;
};

// Installs the environment. Call once before loading plugins (not thread-safe against
// running plugins).
void set_host_environment(HostEnvironment env);

// Whether the store behind the shared-store services can block (Redis); false in memory.
bool store_may_block();

// The table passed to every plugin's entry point and create().
const mg_host* host_table();

// While a plugin's create()/destroy() runs on this thread, host->log(NULL, ...) names it.
class ScopedPluginName {
 public:
  explicit ScopedPluginName(const char* name);
  ~ScopedPluginName();
  ScopedPluginName(const ScopedPluginName&) = delete;
  ScopedPluginName& operator=(const ScopedPluginName&) = delete;

 private:
  const char* previous_;
};

}  // namespace mailgate::chain
