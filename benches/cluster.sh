#!/usr/bin/env bash
# Figures of ws-chat instances joined through Redis (ws-redis), on this machine, written to
# benches/results/cluster.md (and the raw JSON lines to benches/results/cluster.jsonl):
#
# - fanout of one room to MEMBERS members, 16 messages in flight, rate limits off: one
#   instance on its own, one instance with Redis, and two instances with the members split
#   between them; deliveries a second and p99 publish-to-delivery latency;
# - Redis round trips per published message (script calls counted by Redis), which must not
#   grow with members or instances;
# - presence staleness: how long after an instance is killed (SIGKILL) a client on another is
#   told its user left, with a presence lease of LEASE seconds (ROUNDS times);
# - kick latency: an admin API disconnect asked of one instance, for a user on another.
#
# Installs redis-server with apt when missing. Loopback only; every process it starts is
# stopped on exit.
#
#   benches/cluster.sh            (MEMBERS=1000 DURATION=5 LEASE=2 ROUNDS=3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MEMBERS=${MEMBERS:-1000}
DURATION=${DURATION:-5}
LEASE=${LEASE:-2}
ROUNDS=${ROUNDS:-3}
RELEASE=${CARGO_TARGET_DIR:-$PWD/target}/release
OUT=benches/results
mkdir -p "$OUT"
RAW=$OUT/cluster.jsonl
: >"$RAW"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends redis-server redis-tools
fi
cargo build --release --locked -p ws-chat -p benches --bin ws-chat --bin ws-load --bin cluster-probe

pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS=redis://127.0.0.1:$REDIS_PORT

# Starts ws-chat on PORT (admin on PORT+1) with the extra arguments; sets $started.
chat() {
	local port=$1
	shift
	"$RELEASE/ws-chat" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
		--workers 1 --rate-limit 1000000000 --rate-burst 1000000000 --handshake-rate 0 \
		--max-connections-per-user 100000 --admin-token bench "$@" >/dev/null 2>&1 &
	started=$!
	pids+=("$started")
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
		sleep 0.05
	done
	echo "ws-chat on $port did not start" >&2
	exit 1
}

stop() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

evalsha_calls() {
	redis-cli -p "$REDIS_PORT" info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p'
}

# One fanout run: label, then ws-load's fanout arguments.
fanout() {
	local label=$1
	shift
	local before after
	before=$(evalsha_calls)
	"$RELEASE/ws-load" --quiet --warmup 1 --duration "$DURATION" --label "case=$label" \
		fanout --protocol chat --members "$MEMBERS" --in-flight 16 "$@" >>"$RAW"
	after=$(evalsha_calls)
	echo "{\"case\":\"$label\",\"script_calls\":$((${after:-0} - ${before:-0}))}" >>"$RAW"
}

echo "cluster.sh: fanout, one instance on its own"
chat 19301
fanout single --addr 127.0.0.1:19301
stop "$started"

echo "cluster.sh: fanout, one instance with Redis"
chat 19311 --redis "$REDIS"
fanout one-on-redis --addr 127.0.0.1:19311 --room bench1
stop "$started"

echo "cluster.sh: fanout, two instances with Redis, members split"
chat 19321 --redis "$REDIS"
first=$started
chat 19331 --redis "$REDIS"
second=$started
fanout two-on-redis --addr 127.0.0.1:19321 --room bench2 --spread 127.0.0.1:19321,127.0.0.1:19331

echo "cluster.sh: kick latency, asked of one instance for users on the other"
"$RELEASE/cluster-probe" kick --addr 127.0.0.1:19321 --admin 127.0.0.1:19332 --token bench --rounds 20 >>"$RAW"
stop "$first"
stop "$second"

echo "cluster.sh: presence staleness after a kill, lease ${LEASE}s"
for round in $(seq "$ROUNDS"); do
	chat 19341 --redis "$REDIS" --presence-lease "$LEASE"
	victim=$started
	chat 19351 --redis "$REDIS" --presence-lease "$LEASE"
	watcher=$started
	"$RELEASE/cluster-probe" staleness --victim 127.0.0.1:19341 --pid "$victim" \
		--watch 127.0.0.1:19351 --room "stale$round" >>"$RAW"
	stop "$victim"
	stop "$watcher"
done

python3 - "$RAW" "$OUT/cluster.md" "$MEMBERS" "$LEASE" <<'PY'
import json, sys
raw, out, members, lease = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(raw) if l.strip()]
fan = {r["labels"]["case"]: r for r in rows if r.get("scenario") == "fanout"}
calls = {r["case"]: r["script_calls"] for r in rows if "script_calls" in r}
kick = next(r for r in rows if r.get("probe") == "kick")
stale = [r["ms"] for r in rows if r.get("probe") == "staleness"]
lines = [
    "# ws-chat across instances, through Redis",
    "",
    f"Measured by `benches/cluster.sh` on this machine (2 cores; every process on it, the load "
    f"generator included): one room, {members} members, one publisher, 16 messages in flight, "
    "rate limits off, one worker per instance.",
    "",
    "| case | deliveries/s | p99 latency (µs) | published/s | script calls per message |",
    "| --- | ---: | ---: | ---: | ---: |",
]
for case, name in [("single", "one instance, no Redis"), ("one-on-redis", "one instance on Redis"),
                   ("two-on-redis", "two instances on Redis, members split")]:
    r = fan.get(case)
    if not r:
        continue
    per = "-" if case == "single" else f"{calls.get(case, 0) / max(1, r['sent_total']):.2f}"
    lines.append(f"| {name} | {r['deliveries_per_sec']:.0f} | {r['latency_us']['p99']:.0f} | {r['published_per_sec']:.0f} | {per} |")
lines += [
    "",
    f"Kick (admin API disconnect asked of one instance, the user on the other), {kick['rounds']} rounds: "
    f"p50 {kick['p50_ms']:.2f} ms, p99 {kick['p99_ms']:.2f} ms, max {kick['max_ms']:.2f} ms.",
    "",
    f"Presence staleness after a SIGKILL, lease {lease} s (renewed every third; bound: 2x the lease): "
    + ", ".join(f"{s:.0f} ms" for s in stale) + ".",
    "",
    "Load average when written (other work on the machine makes the figures noisier): "
    + open("/proc/loadavg").read().split()[0] + ".",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
