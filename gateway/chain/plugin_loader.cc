// chain/plugin_loader.cc — see plugin_loader.h.
#include "chain/plugin_loader.h"

#include <dlfcn.h>

#include <cstddef>

#include <fmt/format.h>

namespace mailgate::chain {
namespace {

std::string dl_error() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown error";
}

bool valid_name(const char* name) {
  if (name == nullptr || *name == 0) return false;
  size_t n = 0;
  for (const char* p = name; *p != 0; ++p, ++n) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok || n >= 64) return false;
  }
  return true;
}

// The smallest descriptor we accept: everything up to and including `on_close` of ABI 1.0.
constexpr size_t kMinDescriptorSize = offsetof(mg_plugin, on_close) + sizeof(void*);

}  // namespace

LoadedPlugin::LoadedPlugin(std::string path, void* handle, const mg_plugin* descriptor)
    : path_(std::move(path)), handle_(handle), descriptor_(descriptor) {}

LoadedPlugin::~LoadedPlugin() {
  if (handle_ != nullptr) dlclose(handle_);
}

Expected<std::shared_ptr<LoadedPlugin>, std::string> load_plugin(const std::string& path,
                                                                 const mg_host* host) {
  dlerror();  // clear
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return unexpected(fmt::format("plugin {}: cannot load: {}", path, dl_error()));
  auto close = [&] { dlclose(handle); };
  dlerror();
  void* sym = dlsym(handle, MG_PLUGIN_ENTRY_SYMBOL);
  if (sym == nullptr) {
    std::string e = dl_error();
    close();
    return unexpected(fmt::format("plugin {}: no symbol {}: {}", path, MG_PLUGIN_ENTRY_SYMBOL, e));
  }
  auto entry = reinterpret_cast<mg_plugin_entry_fn>(sym);
  const mg_plugin* d = entry(MG_ABI_VERSION, host);
  if (d == nullptr) {
    close();
    return unexpected(fmt::format("plugin {}: entry point returned no descriptor (it refused "
                                  "host ABI {}.{})",
                                  path, MG_ABI_VERSION_MAJOR, MG_ABI_VERSION_MINOR));
  }
  // struct_size, abi_version and name stay first in every major: safe to read for the error.
  if (MG_ABI_MAJOR(d->abi_version) != MG_ABI_VERSION_MAJOR) {
    std::string name = d->name != nullptr ? std::string(d->name).substr(0, 64) : "?";
    std::string e = fmt::format("plugin '{}' ({}) was built for ABI {}.{}, this mailgate has ABI {}.{}",
                                name, path, MG_ABI_MAJOR(d->abi_version),
                                MG_ABI_MINOR(d->abi_version), MG_ABI_VERSION_MAJOR,
                                MG_ABI_VERSION_MINOR);
    close();
    return unexpected(e);
  }
  if (d->struct_size < kMinDescriptorSize) {
    close();
    return unexpected(fmt::format("plugin {}: descriptor too small ({} bytes, need {})", path,
                                  d->struct_size, kMinDescriptorSize));
  }
  if (!valid_name(d->name)) {
    close();
    return unexpected(fmt::format("plugin {}: bad name (want [a-z0-9_-]{{1,64}})", path));
  }
  return std::make_shared<LoadedPlugin>(path, handle, d);
}

}  // namespace mailgate::chain
