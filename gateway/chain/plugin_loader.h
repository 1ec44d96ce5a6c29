// chain/plugin_loader.h — opens a plugin .so and checks it speaks our ABI.
// Owns: dlopen handles (RTLD_NOW | RTLD_LOCAL; closed when the last user lets go), the entry
// symbol lookup, ABI version and descriptor checks, and their error messages (dlerror()
// verbatim, the plugin's name and both versions on a mismatch).
// Must not touch: plugin state (create/destroy are the chain's business) or sessions.
// Thread-safety: load_plugin() may run on any thread; a LoadedPlugin is immutable.
#pragma once

#include <memory>
#include <string>

#include "mailgate/plugin.h"
#include "util/expected.h"

namespace mailgate::chain {

class LoadedPlugin {
 public:
  LoadedPlugin(std::string path, void* handle, const mg_plugin* descriptor);
  ~LoadedPlugin();
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;

  const std::string& path() const { return path_; }
  const mg_plugin& descriptor() const { return *descriptor_; }
  const char* name() const { return descriptor_->name; }
  bool nonblocking() const { return (descriptor_->flags & MG_PLUGIN_NONBLOCKING) != 0; }
  // Whether its `stage` callback runs on the I/O thread (MG_PLUGIN_NONBLOCKING, the stage's
  // MG_PLUGIN_INLINE_STAGE, or MG_PLUGIN_BLOCKS_ONLY_IN_STORE while the store cannot block).
  bool runs_inline(mg_stage stage, bool store_may_block) const {
    const uint32_t f = descriptor_->flags;
    return (f & MG_PLUGIN_NONBLOCKING) != 0 || (f & MG_PLUGIN_INLINE_STAGE(stage)) != 0 ||
           ((f & MG_PLUGIN_BLOCKS_ONLY_IN_STORE) != 0 && !store_may_block);
  }
  // Whether its blocking `stage` callback may be tried on the I/O thread first, with DNS from
  // the resolver's cache only (MG_PLUGIN_TRY_INLINE, ABI 1.5); the host tries only while the
  // store cannot block.
  bool tries_inline(mg_stage stage, bool store_may_block) const {
    // HEADER and BODY are one call per field or chunk: a retry would repeat the first ones.
    return (descriptor_->flags & MG_PLUGIN_TRY_INLINE) != 0 && stage != MG_STAGE_HEADER &&
           stage != MG_STAGE_BODY &&
           MG_ABI_MINOR(descriptor_->abi_version) >= 5 && !store_may_block &&
           !runs_inline(stage, store_may_block);
  }
  // load_plugin() guarantees struct_size covers every ABI 1.0 member; members added in
  // later minors must be checked against struct_size before use.

 private:
  std::string path_;
  void* handle_;
  const mg_plugin* descriptor_;
};

// Loads `path`. `host` is the host services table passed to the entry point. Errors:
//   "plugin /x/y.so: cannot load: <dlerror() text>"
//   "plugin /x/y.so: no symbol mailgate_plugin_entry: <dlerror() text>"
//   "plugin 'spf' (/x/spf.so) was built for ABI 2.0, this mailgate has ABI 1.0"
//   "plugin /x/y.so: entry point returned no descriptor (it refused host ABI 1.0)"
//   "plugin /x/y.so: descriptor too small (12 bytes)" / "...: bad name '...'"
Expected<std::shared_ptr<LoadedPlugin>, std::string> load_plugin(const std::string& path,
                                                                 const mg_host* host);

}  // namespace mailgate::chain
