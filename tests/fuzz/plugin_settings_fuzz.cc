// plugin_settings_fuzz.cc — every built-in plugin's create() on arbitrary settings text, the
// plugin loaded from its .so with dlopen() as the gateway loads it, on the SDK's fake host.
// The first input byte picks the plugin (modulo their number), the rest is the settings text.
// Properties: no crash, hang or sanitizer report in the plugin's parsing; create() either
// returns an instance (then destroyed) or refuses with a message — never "no message", since
// that is what `mailgatectl policy plugin add` and the gateway's log show the admin.
// The plugins come from MAILGATE_FUZZ_PLUGINS (.so paths separated by ':'; ctest and
// contrib/run-fuzzers.sh set it). They are not built with coverage instrumentation, so under
// libFuzzer the harness gives the feedback itself: each distinct outcome (the plugin, and
// "created" or the refusal's text) bumps one of libFuzzer's extra counters, so an input that
// reaches a new check in a plugin's settings parser (a new error message) is kept and mutated
// further, with the settings keys of plugin_settings.dict.
// Inputs holding '/' are skipped: a path setting (dmarc's history_db, bayes's db) could
// otherwise make a plugin create files anywhere; relative names land in a private temp dir.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"

namespace {

#ifdef MAILGATE_FUZZ_LIBFUZZER
// libFuzzer reads this section as extra coverage counters (cleared before every input).
__attribute__((section("__libfuzzer_extra_counters"))) uint8_t outcome_counters[4096];
void note_outcome(size_t plugin, std::string_view outcome) {
  uint64_t h = 1469598103934665603ull ^ plugin;  // FNV-1a
  for (char c : outcome) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  outcome_counters[h % sizeof(outcome_counters)]++;
}
#else
void note_outcome(size_t, std::string_view) {}
#endif

std::vector<std::string> plugin_paths() {
  std::vector<std::string> out;
  const char* env = std::getenv("MAILGATE_FUZZ_PLUGINS");
  std::string_view list = env != nullptr ? env : "";
  while (!list.empty()) {
    const size_t colon = list.find(':');
    const std::string_view item = list.substr(0, colon);
    if (!item.empty()) out.emplace_back(item);
    list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
  }
  if (out.empty()) {
    std::fprintf(stderr, "plugin_settings: MAILGATE_FUZZ_PLUGINS names no plugin .so\n");
    std::abort();
  }
  // Files a plugin creates from a relative setting go to a directory of our own.
  static char dir[] = "/tmp/mailgate-fuzz-settings-XXXXXX";
  FUZZ_CHECK(mkdtemp(dir) != nullptr);
  FUZZ_CHECK(chdir(dir) == 0);
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> plugins = plugin_paths();
  if (size == 0) return 0;
  const size_t index = data[0] % plugins.size();
  const std::string& path = plugins[index];
  const std::string_view settings(reinterpret_cast<const char*>(data + 1), size - 1);
  if (settings.find('/') != std::string_view::npos) return 0;
  if (settings.find('\0') != std::string_view::npos) return 0;  // a C string reaches create()

  mailgate::fake::FakeHost host;
  try {
    mailgate::fake::LoadedPlugin plugin = mailgate::fake::LoadedPlugin::open(host, path, settings);
    note_outcome(index, "created");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    note_outcome(index, what);
    if (what.find("create() failed: ") == std::string::npos) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), what.c_str());
      FUZZ_CHECK(!"the plugin did not load");
    }
    // The message may quote the input; only an empty one is at fault.
    constexpr std::string_view kFailed = "create() failed: ";
    const std::string message = what.substr(what.find(kFailed) + kFailed.size());
    FUZZ_CHECK(!message.empty() && message != "(no message)");
  }
  return 0;
}
