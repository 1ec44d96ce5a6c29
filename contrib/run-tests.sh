#!/usr/bin/env bash
# run-tests.sh — installs the dependencies, builds everything (ccache, all cores) and runs the
# unit and integration tests with ctest. Integration tests start a private Postfix, so run it
# as root:  sudo bash contrib/run-tests.sh
# Then, with MAILGATE_SANITIZERS=1, the whole suite again in an AddressSanitizer +
# UndefinedBehaviorSanitizer build, and every fuzz target for a bounded time
# (contrib/run-fuzzers.sh).
# Environment: MAILGATE_BUILD_DIR (default build; the sanitizer build is $MAILGATE_BUILD_DIR-asan),
# CTEST_ARGS (extra ctest arguments, e.g. CTEST_ARGS="-R integration.test_relay"),
# MAILGATE_SANITIZERS (1 also runs the sanitizer build, about 20 more minutes cold; 0, the
# default, skips it),
# MAILGATE_FUZZ_SECONDS (per fuzz target, default 15; 0 skips fuzzing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
BUILD_DIR="${MAILGATE_BUILD_DIR:-build}"

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

if [ "${MAILGATE_SANITIZERS:-0}" != "0" ]; then
  ASAN_DIR="$BUILD_DIR-asan"
  cmake -S . -B "$ASAN_DIR" -G Ninja -DMAILGATE_SANITIZE=ON \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DPython3_EXECUTABLE=/usr/bin/python3
  cmake --build "$ASAN_DIR" -j"$(nproc)"
  cd "$ASAN_DIR"
  # Any report fails the test that triggered it; leaks too.
  # shellcheck disable=SC2086
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$ROOT/tests/sanitizers/lsan.supp" \
    ctest --output-on-failure -j2 ${CTEST_ARGS:-}
  cd - >/dev/null
fi

FUZZ_SECONDS="${MAILGATE_FUZZ_SECONDS:-15}"
if [ "$FUZZ_SECONDS" != "0" ]; then
  MAILGATE_FUZZ_SECONDS="$FUZZ_SECONDS" MAILGATE_FUZZ_BUILD_DIR="$BUILD_DIR-fuzz" \
    MAILGATE_PLUGIN_BUILD_DIR="$BUILD_DIR/plugins" \
    bash contrib/run-fuzzers.sh
fi
