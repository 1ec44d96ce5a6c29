// tests/fuzz/fuzz_check.h — what the fuzz targets share: an invariant check that aborts (so
// libFuzzer and the replay runner both report the input) with the broken property's text.
// Must not touch: anything the targets test; this is only the failure path.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)
