#!/usr/bin/env bash
# run-fuzzers.sh — builds the fuzz targets of tests/fuzz with clang's libFuzzer, ASan and UBSan,
# and fuzzes each for a bounded time, starting from its seed corpus and regression inputs.
# A crash, sanitizer report or broken invariant fails the run and leaves the input in
# $OUT/crashes/NAME/; copy it to tests/fuzz/regressions/NAME/ with the fix (the main build
# replays that folder as the test fuzz.NAME from then on).
# Environment: MAILGATE_FUZZ_SECONDS (per target, default 20), MAILGATE_FUZZ_BUILD_DIR
# (default build-fuzz), MAILGATE_FUZZ_TARGETS (default: every target tests/fuzz defines).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET="${MAILGATE_FUZZ_SECONDS:-20}"
# Absolute paths throughout: a target may change its working directory (plugin_settings does).
BUILD_DIR="$(realpath -m "${MAILGATE_FUZZ_BUILD_DIR:-build-fuzz}")"

if ! command -v clang++ >/dev/null; then
  echo "run-fuzzers.sh: clang++ is missing (contrib/install-deps.sh installs clang)" >&2
  exit 1
fi

cmake -S tests/fuzz -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_BUILD_TYPE=None >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# Every target tests/fuzz/CMakeLists.txt defines, unless a list is given.
TARGETS="${MAILGATE_FUZZ_TARGETS:-$(sed -n 's/^mailgate_fuzz_target(\([a-z0-9_]*\).*/\1/p' tests/fuzz/CMakeLists.txt)}"

# plugin_settings loads the built-in plugins' .so files from the main build.
if [[ -z "${MAILGATE_FUZZ_PLUGINS:-}" ]]; then
  MAILGATE_FUZZ_PLUGINS="$(realpath "${MAILGATE_PLUGIN_BUILD_DIR:-build/plugins}"/*.so 2>/dev/null | paste -sd: || true)"
  export MAILGATE_FUZZ_PLUGINS
fi

status=0
for t in $TARGETS; do
  if [[ "$t" == plugin_settings && -z "$MAILGATE_FUZZ_PLUGINS" ]]; then
    echo "== skipping plugin_settings: no built plugins (build the main tree first, or set MAILGATE_FUZZ_PLUGINS)"
    continue
  fi
  dict=()
  [[ -f "tests/fuzz/$t.dict" ]] && dict=(-dict="$PWD/tests/fuzz/$t.dict")
  work="$BUILD_DIR/work/$t"
  crashes="$BUILD_DIR/crashes/$t"
  rm -rf "$work" "$crashes"
  mkdir -p "$work" "$crashes"
  inputs=("$PWD/tests/fuzz/corpus/$t")
  [[ -d "tests/fuzz/regressions/$t" ]] && inputs+=("$PWD/tests/fuzz/regressions/$t")
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  # New inputs go to $work (the tree's corpus stays as committed); -max_len bounds one input.
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$BUILD_DIR/${t}_fuzzer" "$work" "${inputs[@]}" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
      -max_len=8192 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$crashes/" \
      -print_final_stats=1 >"$BUILD_DIR/$t.log" 2>&1; then
    echo "FAILED: $t (log: $BUILD_DIR/$t.log, inputs: $crashes/)" >&2
    tail -40 "$BUILD_DIR/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$BUILD_DIR/$t.log" |
      sed "s/^/   $t /"
  fi
done
exit $status
