// store_memory_bench.cc — does the in-memory store stay bounded? Feeds N distinct keys (rate
// limit states for N client addresses, as a flood from many sources would) into a MemoryStore
// of at most M entries, and prints the process's resident memory (VmRSS) as it goes, the
// store's size and evictions, and the time per call. Then, with every entry expired, 90% of
// M new keys: the sweep reclaims the expired entries, so (almost) no live one is evicted —
// only where a shard gets more than its share.
//
//   store_memory_bench [--keys N] [--max_entries M] [--check]
// With --check it exits 1 when RSS grew by more than 1 KiB per allowed entry plus 32 MiB (the
// ctest run uses a small N; run it by hand with --keys 1000000 or more for the real figures).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "store/clock.h"
#include "store/memory_store.h"

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

std::string address(uint64_t i) {
  return "rl:per-ip:" + std::to_string(10 + (i >> 24 & 0xff)) + "." +
         std::to_string(i >> 16 & 0xff) + "." + std::to_string(i >> 8 & 0xff) + "." +
         std::to_string(i & 0xff);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t keys = 1'000'000;
  uint64_t max_entries = 100'000;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--keys") && i + 1 < argc)
      keys = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--max_entries") && i + 1 < argc)
      max_entries = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--check"))
      check = true;
    else {
      std::fprintf(stderr, "usage: %s [--keys N] [--max_entries M] [--check]\n", argv[0]);
      return 2;
    }
  }
  mailgate::store::ManualClock clock;
  const long base = rss_kib();
  long peak = base;
  {
    mailgate::store::MemoryStore store(clock, max_entries);
    const mailgate::store::RateSpec spec{30, 60'000, 0};
    std::printf("keys %llu, max_entries %llu, RSS at start %ld KiB\n",
                static_cast<unsigned long long>(keys), static_cast<unsigned long long>(max_entries),
                base);
    auto t0 = std::chrono::steady_clock::now();
    const uint64_t step = keys >= 10 ? keys / 10 : 1;
    for (uint64_t i = 0; i < keys; ++i) {
      store.rate(address(i), spec, 1, false);
      if ((i + 1) % step == 0) {
        const long rss = rss_kib();
        if (rss > peak) peak = rss;
        std::printf("  %10llu keys: RSS %8ld KiB (+%ld), held %zu, evicted %llu\n",
                    static_cast<unsigned long long>(i + 1), rss, rss - base, store.size(),
                    static_cast<unsigned long long>(store.evictions()));
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("insert: %.0f ns per call\n", secs * 1e9 / static_cast<double>(keys));

    // Every state is older than its period now: new keys sweep them instead of evicting.
    clock.advance_ms(120'000);
    const uint64_t evicted = store.evictions();
    const uint64_t fresh = max_entries * 9 / 10;
    for (uint64_t i = 0; i < fresh; ++i) store.rate(address(i + keys), spec, 1, false);
    const long rss = rss_kib();
    if (rss > peak) peak = rss;
    std::printf("after expiry, %llu new keys: RSS %ld KiB (+%ld), held %zu, live evictions %llu\n",
                static_cast<unsigned long long>(fresh), rss, rss - base, store.size(),
                static_cast<unsigned long long>(store.evictions() - evicted));
  }
  const long bound_kib = static_cast<long>(max_entries) + 32 * 1024;
  std::printf("peak RSS growth %ld KiB (bound for --check: %ld KiB)\n", peak - base, bound_kib);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and quarantine of freed blocks dwarf the store's own use: the figures
  // still print, the bound is for ordinary builds.
  check = false;
  std::printf("AddressSanitizer build: the bound is not checked\n");
#endif
  if (check && peak - base > bound_kib) {
    std::printf("FAIL: memory grew past the bound\n");
    return 1;
  }
  return 0;
}
