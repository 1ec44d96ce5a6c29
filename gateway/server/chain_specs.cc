// server/chain_specs.cc — policy rows to chain specs. See chain_specs.h.
#include "server/chain_specs.h"

#include "policy/snapshot.h"

namespace mailgate::server {

std::vector<chain::PluginSpec> chain_specs_for(const policy::Snapshot& snapshot,
                                               std::string_view profile,
                                               std::string_view plugin_dir) {
  std::vector<chain::PluginSpec> specs;
  for (const policy::PluginEntry* e : snapshot.plugins_for(profile)) {
    if (!e->enabled) continue;
    chain::PluginSpec s;
    s.name = e->name;
    s.path = policy::resolve_plugin_path(e->path, plugin_dir);
    s.settings_json = e->settings_json;
    s.fail_mode = e->fail_mode == policy::FailMode::kOpen ? chain::FailMode::kOpen
                                                          : chain::FailMode::kTempfail;
    s.timeout = e->timeout;
    specs.push_back(std::move(s));
  }
  return specs;
}

}  // namespace mailgate::server
