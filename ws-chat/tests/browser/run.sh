#!/usr/bin/env bash
# Real-browser test of the chat page: installs Chromium (Debian's) and playwright-core if
# missing, builds the server, starts it in chat mode on a free loopback port, runs
# chat.test.mjs against it with node's test runner, and exits with the test's status.
# Works unattended (CI=true, no stdin) on Debian 12 as root; loopback only.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CHROMIUM=/usr/bin/chromium
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi

TIMINGS=()
phase_start() { PHASE="$1"; PHASE_T0=$(date +%s.%N); echo "== $PHASE"; }
phase_end() {
  local t
  t=$(awk -v a="$PHASE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  TIMINGS+=("$(printf '%-22s %7ss' "$PHASE" "$t")")
  echo "== $PHASE: ${t}s"
}
print_timings() {
  [ "${#TIMINGS[@]}" -gt 0 ] || return 0
  echo "== timings"
  printf '   %s\n' "${TIMINGS[@]}"
}

SERVER_PID=""
SERVER_LOG="$(mktemp "${TMPDIR:-/tmp}/ws-chat-server.XXXXXX.log")"
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -f "$SERVER_LOG"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Chromium -------------------------------------------------------------------------------
phase_start "chromium"
if [ ! -x "$CHROMIUM" ]; then
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update
  fi
  $SUDO apt-get install -y --no-install-recommends chromium
fi
"$CHROMIUM" --version 2>/dev/null || true
phase_end

# --- playwright-core ------------------------------------------------------------------------
phase_start "npm ci"
command -v node >/dev/null || { echo "run.sh: node is required" >&2; exit 1; }
node --version
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
phase_end

# --- server ---------------------------------------------------------------------------------
phase_start "cargo build"
(cd "$ROOT" && cargo build --release -p ws-chat)
phase_end

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/ws-chat"

phase_start "server start"
free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'; }
PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
ADMIN_ADDR="127.0.0.1:$(free_port)"
WS_LOG="${WS_LOG:-info}" "$BIN" --listen "$ADDR" --admin-listen "$ADMIN_ADDR" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "run.sh: the server did not start listening on $ADDR" >&2
  cat "$SERVER_LOG" >&2
  exit 1
fi
echo "server pid $SERVER_PID listening on $ADDR, admin on $ADMIN_ADDR"
phase_end

# --- the test -------------------------------------------------------------------------------
phase_start "browser test"
status=0
(cd "$HERE" && CHAT_URL="http://$ADDR" ADMIN_URL="http://$ADMIN_ADDR" CHROMIUM_PATH="$CHROMIUM" node --test chat.test.mjs) || status=$?
phase_end

if [ "$status" -ne 0 ]; then
  echo "== server log (last 60 lines)"
  tail -n 60 "$SERVER_LOG" || true
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "run.sh: the server exited during the test" >&2
  tail -n 60 "$SERVER_LOG" >&2 || true
  [ "$status" -ne 0 ] || status=1
fi
print_timings
echo "screenshots: $HERE/screenshots/"
exit "$status"
