#!/usr/bin/env bash
# quickstart.sh — from a fresh Debian 12 machine to a running mailgate, in one command:
#   sudo bash contrib/quickstart.sh
# Installs the dependencies, builds mailgate (Release), starts a private Postfix on
# 127.0.0.1:10025 (state in ./run/postfix; every local account is a mailbox at @localhost),
# then runs mailgate in the foreground on 127.0.0.1:2525 with that Postfix as its backend.
# Ctrl-C (or SIGTERM) stops mailgate gracefully, then the private Postfix.
# Idempotent: re-running stops what a previous run left behind and starts afresh.
# Environment: MAILGATE_BUILD_DIR (default build), MAILGATE_LISTEN (127.0.0.1:2525),
#              MAILGATE_BACKEND_PORT (10025), extra mailgate flags as arguments.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
BUILD_DIR="${MAILGATE_BUILD_DIR:-build}"
LISTEN="${MAILGATE_LISTEN:-127.0.0.1:2525}"
BACKEND_PORT="${MAILGATE_BACKEND_PORT:-10025}"
RUN="$ROOT/run"
PY=/usr/bin/python3   # the system Python: the harness is stdlib-only

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (sudo bash contrib/quickstart.sh): Postfix's master runs as root" >&2
  exit 1
fi

echo "== installing dependencies"
bash contrib/install-deps.sh

echo "== building ($BUILD_DIR, Release)"
# Warnings are errors in CI (run-tests.sh), not here: a newer compiler warning must not
# keep a user from running the gateway.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMAILGATE_WERROR=OFF \
  -DPython3_EXECUTABLE="$PY" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target mailgate mailgatectl mailgate_plugins
BIN="$(cd "$BUILD_DIR" && pwd)/gateway/mailgate"
CTL="$(cd "$BUILD_DIR" && pwd)/tools/mailgatectl"
PLUGIN_DIR="$(cd "$BUILD_DIR" && pwd)/plugins"

mkdir -p "$RUN/spool"
chmod 755 "$RUN"

postfix_cli() { (cd "$ROOT/tests/integration" && "$PY" -m mgtest.postfix "$@"); }

# A mailgate left running by a previous run (only ours: same binary, pid from our pid file).
if [ -f "$RUN/mailgate.pid" ]; then
  old="$(cat "$RUN/mailgate.pid")"
  if [ -n "$old" ] && [ "$(readlink -f "/proc/$old/exe" 2>/dev/null)" = "$(readlink -f "$BIN")" ]; then
    echo "== stopping stale mailgate (pid $old)"
    kill -TERM "$old" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$old" 2>/dev/null || true
  fi
  rm -f "$RUN/mailgate.pid"
fi

# The embedded default policy, made on first run: localhost is a local domain and the access
# plugin refuses relaying elsewhere. Edit it live with: $CTL --db run/policy.db policy ...
POLICY="$RUN/policy.db"
if [ ! -f "$POLICY" ]; then
  echo "== creating the default policy ($POLICY)"
  "$CTL" --db "$POLICY" init
  "$CTL" --db "$POLICY" policy domain add localhost
  if [ -f "$PLUGIN_DIR/access.so" ]; then
    "$CTL" --db "$POLICY" policy plugin add --name access --path access.so
  fi
fi

echo "== starting private Postfix on 127.0.0.1:$BACKEND_PORT (run/postfix)"
postfix_cli stop --dir "$RUN/postfix" >/dev/null 2>&1 || true
# Every local account (/etc/passwd) gets a mailbox user@localhost.
mapfile -t USERS < <(cut -d: -f1 /etc/passwd | grep -E '^[A-Za-z0-9._+-]+$' | sort -u)
postfix_cli start --dir "$RUN/postfix" --port "$BACKEND_PORT" --domains localhost --users "${USERS[@]}"

MG_PID=""
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$MG_PID" ] && kill -0 "$MG_PID" 2>/dev/null; then
    kill -TERM "$MG_PID" 2>/dev/null || true
    wait "$MG_PID" 2>/dev/null || true
  fi
  rm -f "$RUN/mailgate.pid"
  echo "== stopping private Postfix"
  postfix_cli stop --dir "$RUN/postfix" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat <<MSG
== mailgate on $LISTEN → Postfix 127.0.0.1:$BACKEND_PORT (Ctrl-C to stop)
   try:  swaks --server $LISTEN --to root@localhost
   mail: $RUN/postfix/mail/localhost/<user>/new/    Postfix log: $RUN/postfix/maillog
MSG
"$BIN" --listen="$LISTEN" --backend="127.0.0.1:$BACKEND_PORT" --spool_dir="$RUN/spool" \
  --policy_db="$POLICY" --plugin_dir="$PLUGIN_DIR" "$@" &
MG_PID=$!
echo "$MG_PID" > "$RUN/mailgate.pid"
set +e
wait "$MG_PID"
status=$?
set -e
MG_PID=""
exit "$status"
