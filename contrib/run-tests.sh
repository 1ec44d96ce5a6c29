#!/usr/bin/env bash
# run-tests.sh — installs the dependencies, builds everything (ccache, all cores) and runs the
# unit and integration tests with ctest. Integration tests start a private Postfix, so run it
# as root:  sudo bash contrib/run-tests.sh
# Then the unit tests, fuzz corpora and hostile-client/fault integration tests again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (the whole suite with
# MAILGATE_SANITIZERS=full), the threaded parts' unit tests and eight integration files
# against a ThreadSanitizer build, and every fuzz target for a bounded time
# (contrib/run-fuzzers.sh).
# Environment: MAILGATE_BUILD_DIR (default build; the sanitizer build is $MAILGATE_BUILD_DIR-asan),
# CTEST_ARGS (extra ctest arguments, e.g. CTEST_ARGS="-R integration.test_relay"),
# MAILGATE_SANITIZERS (ci, the default: the sanitizer subset above; full: the whole suite; 0:
# none), MAILGATE_TSAN (1, the default; 0 skips ThreadSanitizer),
# MAILGATE_FUZZ_SECONDS (per fuzz target, default 15; 0 skips fuzzing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
BUILD_DIR="${MAILGATE_BUILD_DIR:-build}"
# Integration tests of hostile clients and faults (issue 10), also run in the sanitizer build.
HOSTILE_AND_FAULT_TESTS="hostile|smuggling|limits|protocol|access|backend_failure|crash_no_loss|spool_full|reload_under_load|tls|dns"
# Unit tests of the threaded parts, run under ThreadSanitizer.
# Integration files run against a ThreadSanitizer build of the gateway itself: its I/O
# threads each accept on their own SO_REUSEPORT socket while SIGHUP swaps the configuration
# and TLS context they read, and SIGTERM closes the acceptors on their threads.
TSAN_INTEGRATION_TESTS="operations|reload_under_load|limits|relay|tls|hostile|protocol|backend_failure"
TSAN_TESTS="ChainTest.*:PluginLoader.*:HostServices.*:JournalModes/PolicyStoreTest.*:MemoryStore.*:Backends/StoreContract.*:Resolver*:LocalResolverTest.*:UnboundServerTest.*:Upstream*:MilterSessionTest.*:RateLimitTest.*:GreylistTest.*:Counter.*:Histogram.*:PluginMetrics.*:HttpServerTest.*:TraceStoreTest.*"

bash contrib/install-deps.sh

# ccache keyed on paths relative to the checkout, so a fresh clone elsewhere hits the cache.
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=true  # -g would otherwise key every object on the build directory

# /usr/bin/python3: the integration tests are stdlib-only and must not pick up a pyenv shim.
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DPython3_EXECUTABLE=/usr/bin/python3
cmake --build "$BUILD_DIR" -j"$(nproc)"

# -j2 is safe: the integration tests hold one RESOURCE_LOCK and run one at a time; unit
# tests run beside them.
cd "$BUILD_DIR"
# shellcheck disable=SC2086
ctest --output-on-failure -j2 ${CTEST_ARGS:-}
cd - >/dev/null

# The sanitizer pass. "ci" (the default): an ASan+UBSan build runs the unit tests, the fuzz
# corpora and the hostile-client and fault integration tests; "full": the whole suite (about
# 15 more minutes); "0": none.
SANITIZERS="${MAILGATE_SANITIZERS:-ci}"
if [ "$SANITIZERS" != "0" ]; then
  ASAN_DIR="$BUILD_DIR-asan"
  cmake -S . -B "$ASAN_DIR" -G Ninja -DMAILGATE_SANITIZE=ON \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DPython3_EXECUTABLE=/usr/bin/python3
  cmake --build "$ASAN_DIR" -j"$(nproc)"
  cd "$ASAN_DIR"
  # Any report fails the test that triggered it; leaks too.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp"
  if [ "$SANITIZERS" = "full" ]; then
    # shellcheck disable=SC2086
    ctest --output-on-failure -j2 ${CTEST_ARGS:-}
  else
    ctest --output-on-failure -j2 -E '^(integration|bench)\.'
    ctest --output-on-failure -j2 -R "^integration\.test_($HOSTILE_AND_FAULT_TESTS)\$"
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  cd - >/dev/null
fi

# ThreadSanitizer over the unit tests of the threaded parts: the plugin worker pool and chain,
# the policy store's reloader, the resolver's thread, the sharded memory store, the milter
# session (libmilter's threads), the metrics shards, HTTP server and trace writer threads, and
# the milter client plugin (a timed-out call racing the session's next one); then the gateway
# itself, built with ThreadSanitizer, under the integration files in TSAN_INTEGRATION_TESTS.
# MAILGATE_TSAN=0 skips it.
if [ "${MAILGATE_TSAN:-1}" != "0" ]; then
  TSAN_DIR="$BUILD_DIR-tsan"
  cmake -S . -B "$TSAN_DIR" -G Ninja -DMAILGATE_TSAN=ON \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DPython3_EXECUTABLE=/usr/bin/python3
  cmake --build "$TSAN_DIR" -j"$(nproc)" --target mailgate_unit_tests milter_client_tests \
    mailgate mailgatectl mailgate_plugins
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tests/sanitizers/tsan.supp"
  "$TSAN_DIR/tests/mailgate_unit_tests" --gtest_filter="$TSAN_TESTS"
  "$(find "$TSAN_DIR" -name milter_client_tests -type f -perm -u+x | head -1)"
  (cd "$TSAN_DIR" && ctest --output-on-failure -j2 -R "^integration\.test_($TSAN_INTEGRATION_TESTS)\$")
  unset TSAN_OPTIONS
fi

FUZZ_SECONDS="${MAILGATE_FUZZ_SECONDS:-15}"
if [ "$FUZZ_SECONDS" != "0" ]; then
  MAILGATE_FUZZ_SECONDS="$FUZZ_SECONDS" MAILGATE_FUZZ_BUILD_DIR="$BUILD_DIR-fuzz" \
    MAILGATE_PLUGIN_BUILD_DIR="$BUILD_DIR/plugins" \
    bash contrib/run-fuzzers.sh
fi
