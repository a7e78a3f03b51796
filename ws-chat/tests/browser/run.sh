#!/usr/bin/env bash
# Real-browser test of the chat page: installs Chromium and redis-server (Debian's) and the
# node packages if missing, builds the server, starts it in chat mode on a free loopback port,
# and, for the restart test, a redis-server and two chat instances through it (A kept by a
# small supervisor that starts it again when the test asks), runs chat.test.mjs against them
# with node's test runner, stops everything it started, and exits with the test's status.
# A fourth server serves the chat over TLS (https and wss), with a certificate from a CA made
# for the run (scripts/test-ca.sh), which the wss test's Chromium trusts by its SPKI hash.
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
TLS_PID=""
REDIS_PID=""
B_PID=""
SUPERVISOR_PID=""
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ws-chat-browser.XXXXXX")"
SERVER_LOG="$WORK/server.log"
REDIS_LOG="$WORK/redis.log"
A_LOG="$WORK/instance-a.log"
B_LOG="$WORK/instance-b.log"
# Instance A's supervisor keeps A's pid in $CTL/a.pid while it runs; $CTL/start-a asks it to
# start A again, $CTL/stop to stop supervising.
CTL="$WORK/ctl"
mkdir -p "$CTL"

# Stops a process this script started: TERM, then KILL after 5 s.
stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  touch "$CTL/stop"
  # The supervisor first, so that it starts no new A; then the A it left, if any.
  stop_pid "$SUPERVISOR_PID"
  if [ -s "$CTL/a.pid" ]; then
    local a
    a="$(cat "$CTL/a.pid")"
    kill -TERM "$a" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$a" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$a" 2>/dev/null || true
  fi
  stop_pid "$B_PID"
  stop_pid "$SERVER_PID"
  stop_pid "$TLS_PID"
  stop_pid "$REDIS_PID"
  rm -rf "$WORK"
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

# --- redis-server ---------------------------------------------------------------------------
phase_start "redis-server"
if ! command -v redis-server >/dev/null 2>&1; then
  if ! apt-cache policy redis-server 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update
  fi
  $SUDO apt-get install -y --no-install-recommends redis-server
fi
redis-server --version
phase_end

# --- playwright-core, ws (the restart tests' node client) -----------------------------------
phase_start "npm ci"
command -v node >/dev/null || { echo "run.sh: node is required" >&2; exit 1; }
node --version
(cd "$HERE" && npm ci --include=dev --no-audit --no-fund --loglevel=error)
phase_end

# --- server ---------------------------------------------------------------------------------
phase_start "cargo build"
(cd "$ROOT" && cargo build --release -p ws-chat)
phase_end

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/ws-chat"

phase_start "servers start"
free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'; }
# Waits up to 15 s for a port to accept connections while process $2 lives; fails with its log.
wait_listening() {
  local port="$1" pid="$2" log="$3"
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: nothing listening on 127.0.0.1:$port" >&2
  cat "$log" >&2
  exit 1
}
PORT="$(free_port)"
ADDR="127.0.0.1:$PORT"
ADMIN_ADDR="127.0.0.1:$(free_port)"
WS_LOG="${WS_LOG:-info}" "$BIN" --listen "$ADDR" --admin-listen "$ADMIN_ADDR" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# The same chat over TLS, on its own port.
"$ROOT/scripts/test-ca.sh" "$WORK/tls"
TLS_LOG="$WORK/server-tls.log"
TLS_ADDR="127.0.0.1:$(free_port)"
WS_LOG="${WS_LOG:-info}" "$BIN" --listen "$TLS_ADDR" --admin-listen off \
  --tls-cert "$WORK/tls/cert.pem" --tls-key "$WORK/tls/key.pem" >"$TLS_LOG" 2>&1 &
TLS_PID=$!

# A redis-server of the test's own, persisting nothing.
REDIS_PORT="$(free_port)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >"$REDIS_LOG" 2>&1 &
REDIS_PID=$!
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
wait_listening "$REDIS_PORT" "$REDIS_PID" "$REDIS_LOG"

# Two chat instances through it. A's restart hint is kept under a second.
A_ADDR="127.0.0.1:$(free_port)"
B_ADDR="127.0.0.1:$(free_port)"
WS_LOG="${WS_LOG:-info}" "$BIN" --listen "$B_ADDR" --admin-listen off --redis "$REDIS_URL" >"$B_LOG" 2>&1 &
B_PID=$!
# As a service manager would, the supervisor starts A again on the same port after it exits,
# but only once the test asks (it creates start-a): the test decides how long A stays down.
supervise_a() {
  trap 'exit 0' TERM
  while [ ! -e "$CTL/stop" ]; do
    WS_LOG="${WS_LOG:-info}" "$BIN" --listen "$A_ADDR" --admin-listen off --redis "$REDIS_URL" \
      --reconnect-jitter 1 >>"$A_LOG" 2>&1 &
    local pid=$!
    echo "$pid" >"$CTL/a.pid.new" && mv "$CTL/a.pid.new" "$CTL/a.pid"
    wait "$pid" || true
    rm -f "$CTL/a.pid"
    until [ -e "$CTL/start-a" ] || [ -e "$CTL/stop" ]; do sleep 0.05; done
    rm -f "$CTL/start-a"
  done
}
supervise_a &
SUPERVISOR_PID=$!
wait_listening "$PORT" "$SERVER_PID" "$SERVER_LOG"
wait_listening "${TLS_ADDR##*:}" "$TLS_PID" "$TLS_LOG"
wait_listening "${B_ADDR##*:}" "$B_PID" "$B_LOG"
wait_listening "${A_ADDR##*:}" "$SUPERVISOR_PID" "$A_LOG"
echo "server pid $SERVER_PID listening on $ADDR, admin on $ADMIN_ADDR"
echo "redis pid $REDIS_PID on $REDIS_PORT; instance A on $A_ADDR (supervisor $SUPERVISOR_PID), B pid $B_PID on $B_ADDR"
phase_end

# --- the test -------------------------------------------------------------------------------
phase_start "browser test"
status=0
(cd "$HERE" && CHAT_URL="http://$ADDR" ADMIN_URL="http://$ADMIN_ADDR" CHROMIUM_PATH="$CHROMIUM" \
  CHAT_A_URL="http://$A_ADDR" CHAT_B_URL="http://$B_ADDR" REDIS_PORT="$REDIS_PORT" INSTANCE_A_CTL="$CTL" \
  CHAT_TLS_URL="https://$TLS_ADDR" CHAT_TLS_SPKI="$(cat "$WORK/tls/spki.txt")" \
  node --test chat.test.mjs) || status=$?
phase_end

if [ "$status" -ne 0 ]; then
  for log in "$SERVER_LOG" "$TLS_LOG" "$A_LOG" "$B_LOG" "$REDIS_LOG"; do
    echo "== $(basename "$log") (last 40 lines)"
    tail -n 40 "$log" || true
  done
fi
for p in "server:$SERVER_PID:$SERVER_LOG" "TLS server:$TLS_PID:$TLS_LOG" "instance B:$B_PID:$B_LOG" "redis-server:$REDIS_PID:$REDIS_LOG"; do
  IFS=: read -r what pid log <<<"$p"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: $what exited during the test" >&2
    tail -n 40 "$log" >&2 || true
    [ "$status" -ne 0 ] || status=1
  fi
done
print_timings
echo "screenshots: $HERE/screenshots/"
exit "$status"
