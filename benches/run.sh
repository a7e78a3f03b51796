#!/usr/bin/env bash
# The server comparison: ws-mio-server and the peer servers (tokio-tungstenite, fastwebsockets,
# ws-tokio, and uWebSockets when ../shared/peers/uws is beside the repository) under the same
# load generator, server and load generator pinned to different cores, several
# rounds with the order of the servers rotated; hostile clients against ws-mio-server alone;
# then the codec benchmarks. Writes
# benches/results/{results.md,results.json,chart.svg,raw.jsonl}.
#
#   benches/run.sh                                    # 5 rounds, 1 s warm-up + 3 s per run
#   ROUNDS=1 WARMUP=0.5 DURATION=1 CODEC=0 benches/run.sh   # a quick look
#   ONLY="echo-d16-100x20B idle-10k" benches/run.sh   # some scenarios
#
# Settings (environment): ROUNDS, WARMUP, DURATION (seconds), SERVER_CPU and LOAD_CPU (core
# numbers for taskset), BENCH_CPU (the criterion benchmarks' core), CODEC (1: run the criterion
# benchmarks too; 0: reuse criterion's last results if any), ONLY (scenario ids), MERGE (1: with
# ONLY, keep the other scenarios' figures from the results already in OUT, each marked with
# the commit and date it was measured at), OUT (results directory), NOTE (a sentence for the
# report), PORT_BASE, SERVERS and OURS (below), UWS_DIR (uWebSockets' sources and build script,
# ../shared/peers/uws by default).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BENCH_CPU=${BENCH_CPU:-$SERVER_CPU}
CODEC=${CODEC:-1}
ONLY=${ONLY:-}
OUT=${OUT:-benches/results}
PORT_BASE=${PORT_BASE:-9300}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

# id | kind | title | ws-load arguments | figure | unit | better | target [| ws-mio-server arguments]
# kind: echo (every server echoes), fanout (ours: --mode broadcast, peers: --mode fanout; each
# publishes every message to every connection, the sender included), connect (echo servers,
# connections held idle; with --deflate ws-mio-server alone), attack (ws-mio-server alone, the peers are skipped: hostile clients
# beside bystanders, in --mode echo, or --mode broadcast for --kind slow-room; the figure is
# the server's resident memory growth per attacker, with the bystanders' latency calm and
# under attack beside it). `--tls` in the ws-load arguments runs the scenario over wss
# (ws-mio-server alone, with a certificate from scripts/test-ca.sh made for the run); each wss
# scenario is named as its ws twin with `-wss`, and benches/wss.sh compares the two.
SCENARIOS=(
	"echo-d1-100x20B|echo|echo, 1 in flight, 100 conns x 20 B|echo --connections 100 --size 20 --depth 1|messages_per_sec|rate|higher|ratio:uws:1.0;ratio:fastwebsockets:1.0"
	"echo-d16-100x20B|echo|echo, 16 in flight, 100 conns x 20 B|echo --connections 100 --size 20 --depth 16|messages_per_sec|rate|higher|ratio:uws:1.0;ratio:tokio-tungstenite:2.5"
	"echo-d16-1000x20B|echo|echo, 16 in flight, 1000 conns x 20 B|echo --connections 1000 --size 20 --depth 16|messages_per_sec|rate|higher|ratio:uws:1.0;ratio:tokio-tungstenite:2.5"
	"echo-d16-100x1KiB|echo|echo, 16 in flight, 100 conns x 1 KiB|echo --connections 100 --size 1024 --depth 16|messages_per_sec|rate|higher|ratio:uws:1.1;ratio:tokio-tungstenite:2.5"
	"echo-d16-10x64KiB|echo|echo, 16 in flight, 10 conns x 64 KiB|echo --connections 10 --size 65536 --depth 16|messages_per_sec|rate|higher|ratio:uws:1.1;ratio:tokio-tungstenite:2.5"
	"fanout-1k-d1|fanout|fanout to 1,000 members, 1 in flight|fanout --members 1000 --in-flight 1|deliveries_per_sec|rate|higher|ratio:uws:1.0;ratio:tokio-tungstenite:2.5"
	"fanout-1k-d16|fanout|fanout to 1,000 members, 16 in flight|fanout --members 1000 --in-flight 16|deliveries_per_sec|rate|higher|ratio:uws:1.1;ratio:tokio-tungstenite:2.5"
	"fanout-10k-d1|fanout|fanout to 10,000 members, 1 in flight|fanout --members 10000 --in-flight 1|deliveries_per_sec|rate|higher|ratio:uws:1.0;ratio:tokio-tungstenite:2.5"
	"fanout-10k-d16|fanout|fanout to 10,000 members, 16 in flight|fanout --members 10000 --in-flight 16|deliveries_per_sec|rate|higher|ratio:uws:1.1;ratio:tokio-tungstenite:2.5"
	"echo-d16-100x20B-wss|echo|echo over wss, 16 in flight, 100 conns x 20 B (ours alone)|echo --connections 100 --size 20 --depth 16 --tls|messages_per_sec|rate|higher|"
	"echo-d16-100x1KiB-wss|echo|echo over wss, 16 in flight, 100 conns x 1 KiB (ours alone)|echo --connections 100 --size 1024 --depth 16 --tls|messages_per_sec|rate|higher|"
	"echo-d16-10x64KiB-wss|echo|echo over wss, 16 in flight, 10 conns x 64 KiB (ours alone)|echo --connections 10 --size 65536 --depth 16 --tls|messages_per_sec|rate|higher|"
	"fanout-1k-d16-wss|fanout|fanout over wss to 1,000 members, 16 in flight (ours alone)|fanout --members 1000 --in-flight 16 --tls|deliveries_per_sec|rate|higher|"
	"idle-10k|connect|memory per idle connection, 10,000 connections|connect --connections 10000 --hold 2|bytes_per_connection|bytes|lower|atmost:uws;below:1024"
	"idle-10k-deflate|connect|memory per idle connection after two compressed messages each way, 10,000 connections (ours alone: the peers do not compress)|connect --connections 10000 --hold 2 --deflate|bytes_per_connection|bytes|lower|below:2048"
	"attack-flood|attack|flood: 20 attackers writing 64 KiB frames, never reading|attack --kind flood --attackers 20 --bystanders 50|rss_growth_per_attacker_bytes|bytes|lower|"
	"attack-ping|attack|ping flood: 20 attackers writing 125-byte pings, never reading|attack --kind ping --attackers 20 --bystanders 50|rss_growth_per_attacker_bytes|bytes|lower|"
	"attack-requests|attack|requests: 20 attackers writing 16-byte texts, never reading|attack --kind requests --attackers 20 --bystanders 50|rss_growth_per_attacker_bytes|bytes|lower|"
	"attack-deflate-bomb|attack|deflate bomb at the echo server's 16 MiB message limit: 10 attackers, 32 MiB of zeros in one fragment, again and again|attack --kind deflate-bomb --attackers 10 --bystanders 50|rss_growth_per_attacker_bytes|bytes|lower|"
	"attack-deflate-bomb-64k|attack|deflate bomb at a chat-sized 64 KiB message limit: 10 attackers, 128 KiB of zeros in one fragment, again and again|attack --kind deflate-bomb --attackers 10 --bystanders 50 --max-message-size 65536|rss_growth_per_attacker_bytes|bytes|lower||--max-message-size 65536"
	"attack-deflate-bomb-rated|attack|deflate bomb at the 16 MiB limit with the default handshake rate (20 a second, 100 at once, per address): 10 attackers reconnecting from one address|attack --kind deflate-bomb --attackers 10 --bystanders 50|rss_growth_per_attacker_bytes|bytes|lower||--handshake-rate 20 --handshake-burst 100"
	"attack-slow-room|attack|slow room: 20 silent members, 10 publishers of 4 KiB|attack --kind slow-room --attackers 20 --bystanders 10 --size 4096|rss_growth_per_attacker_bytes|bytes|lower|"
	"attack-trickle|attack|trickle: 100 attackers adding one byte per frame every 10 ms|attack --kind trickle --attackers 100 --bystanders 50 --trickle-interval-ms 10|rss_growth_per_attacker_bytes|bytes|lower|"
)
# SERVERS (space-separated) and OURS (the one the others are compared with) change who runs:
# SERVERS="ws-tokio tokio-tungstenite" OURS=ws-tokio compares the two tokio servers.
# uWebSockets (C++) joins the default servers when its sources are beside the repository: they
# are not part of the project and a user's machine may not have them.
UWS_DIR=${UWS_DIR:-../shared/peers/uws}
default_servers="ws-mio-server tokio-tungstenite fastwebsockets ws-tokio"
if [[ -x $UWS_DIR/build.sh ]]; then
	default_servers+=" uws"
else
	echo "run.sh: no uWebSockets peer ($UWS_DIR/build.sh is absent): measuring without it" >&2
fi
read -r -a SERVERS <<<"${SERVERS:-$default_servers}"
OURS=${OURS:-ws-mio-server}

# Each measured program runs in its own session, as separately started programs do. With the
# scheduler's autogroups, programs started from one script would otherwise share one group's
# CPU share against every other session's work on a busy machine.

# 10,000 connections need as many descriptors in the server and in the load generator.
hard=$(ulimit -Hn)
if [[ $hard == unlimited || $hard -gt 20000 ]]; then hard=20000; fi
ulimit -n "$hard"
if (($(ulimit -n) < 10100)); then
	echo "run.sh: the open-file limit is $(ulimit -n); the 10,000-connection scenarios need 10100" >&2
fi
for tool in taskset setsid python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "run.sh: $tool is required" >&2
		exit 1
	fi
done

echo "==> building (release)"
nice -n 10 cargo build --release -p ws-mio-server -p benches --bins
# Private copies: the shared target directory may be rebuilt while the run goes on.
work=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/bin"
for b in ws-mio-server ws-load peer-tungstenite peer-fastwebsockets peer-ws-tokio; do
	cp "$TARGET_DIR/release/$b" "$work/bin/"
done
if [[ " ${SERVERS[*]} " == *" uws "* ]]; then
	# Built once into the target directory, again when its sources or build script change.
	uws_bin=$TARGET_DIR/uws-peer/uws-peer
	if [[ ! -x $uws_bin || -n $(find "$UWS_DIR" -newer "$uws_bin" -type f -print -quit) ]]; then
		missing=()
		command -v g++ >/dev/null || missing+=(g++)
		[[ -e /usr/include/zlib.h ]] || missing+=(zlib1g-dev)
		if ((${#missing[@]})); then
			echo "==> installing ${missing[*]} for the uWebSockets peer"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends "${missing[@]}"
		fi
		echo "==> building the uWebSockets peer ($UWS_DIR)"
		nice -n 10 "$UWS_DIR/build.sh" "$TARGET_DIR/uws-peer" >/dev/null
	fi
	cp "$uws_bin" "$work/bin/"
fi
BIN=$work/bin
# The wss scenarios' certificate, made for this run.
scripts/test-ca.sh "$work/tls"
TLS_SERVER_ARGS=(--tls-cert "$work/tls/cert.pem" --tls-key "$work/tls/key.pem")

mkdir -p "$OUT"
raw=$OUT/raw.jsonl
commit=$(git rev-parse --short HEAD)
run_date=$(date -u '+%Y-%m-%d %H:%M UTC')
if [[ ${MERGE:-0} == 1 && -n $ONLY && -s $raw && -s $OUT/results.json ]]; then
	# The scenarios not run now keep their figures, marked with the run they came from.
	python3 - "$raw" "$OUT/results.json" "$ONLY" >"$work/kept.jsonl" <<-'EOF'
		import json, sys
		raw, results, only = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
		meta = json.load(open(results))["meta"]
		for line in open(raw):
		    if not line.strip():
		        continue
		    r = json.loads(line)
		    labels = r.setdefault("labels", {})
		    if labels.get("scenario") in only:
		        continue
		    labels.setdefault("commit", meta["commit"])
		    labels.setdefault("date", meta["date"])
		    print(json.dumps(r, separators=(",", ":")))
	EOF
	cp "$work/kept.jsonl" "$raw"
else
	: >"$raw"
fi
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
port=$PORT_BASE

start_server() { # name mode(echo|fanout) port [ws-mio-server arguments]
	local name=$1 mode=$2 port=$3 bin args
	shift 3
	case $name in
	ws-mio-server)
		bin=ws-mio-server
		args=(--workers 1 --listen "127.0.0.1:$port" --admin-listen off --ping-interval 0 --drain-timeout 1
			--max-connections 100000 --max-connections-per-ip 100000)
		# One address opens every connection: no handshake rate, unless the scenario sets one.
		if [[ " $* " != *" --handshake-rate "* ]]; then args+=(--handshake-rate 0); fi
		args+=(--mode "$([[ $mode == fanout ]] && echo broadcast || echo echo)")
		args+=("$@")
		;;
	tokio-tungstenite | fastwebsockets | ws-tokio)
		bin=peer-${name#tokio-}
		args=(--listen "127.0.0.1:$port" --mode "$mode")
		;;
	uws)
		bin=uws-peer
		args=(--listen "127.0.0.1:$port" --mode "$mode")
		;;
	esac
	WS_LOG=warn setsid taskset -c "$SERVER_CPU" "$BIN/$bin" "${args[@]}" 2>>"$work/servers.log" &
	server_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "run.sh: $name did not start listening on $port" >&2
	return 1
}

stop_server() {
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

selected=()
for line in "${SCENARIOS[@]}"; do
	id=${line%%|*}
	if [[ -z $ONLY || " $ONLY " == *" $id "* ]]; then selected+=("$line"); fi
done

echo "==> ${#selected[@]} scenarios x ${#SERVERS[@]} servers (attacks and deflate: ws-mio-server only) x $ROUNDS rounds (warm-up $WARMUP s, $DURATION s measured)"
for ((round = 1; round <= ROUNDS; round++)); do
	for line in "${selected[@]}"; do
		IFS='|' read -r id kind title load_args metric _unit _better _target server_args <<<"$line"
		# Attacks measure what our server holds for an attacker and what the others pay for
		# it; the peers have no such bounds to compare.
		servers=("${SERVERS[@]}")
		# So do scenarios of what the peers here do not have (permessage-deflate, TLS).
		tls=0
		if [[ " $load_args " == *" --tls "* ]]; then tls=1; fi
		if [[ $kind == attack || " $load_args " == *" --deflate "* ]] || ((tls)); then
			[[ " ${SERVERS[*]} " == *" ws-mio-server "* ]] || continue
			servers=(ws-mio-server)
		fi
		mode=echo
		if [[ $kind == fanout || ($kind == attack && " $load_args " == *" --kind slow-room "*) ]]; then
			mode=fanout
		fi
		for ((i = 0; i < ${#servers[@]}; i++)); do
			# Rotate the order each round, so no server always runs first or last.
			server=${servers[$(((i + round - 1) % ${#servers[@]}))]}
			port=$((port + 1))
			read -r -a server_words <<<"$server_args"
			if ((tls)); then server_words+=("${TLS_SERVER_ARGS[@]}"); fi
			start_server "$server" "$mode" "$port" "${server_words[@]}" || continue
			extra=()
			if [[ $kind == fanout ]]; then extra=(--protocol raw); fi
			if ((tls)); then extra+=(--ca "$work/tls/ca.pem"); fi
			read -r -a words <<<"$load_args"
			# An attack measures two windows (calm, then under attack), each after a warm-up.
			limit=$(python3 -c "print(int(60 + 2 * ($WARMUP + $DURATION) + 30))")
			result=$work/result.json
			rm -f "$result"
			timeout "$limit" setsid taskset -c "$LOAD_CPU" "$BIN/ws-load" --quiet \
				--addr "127.0.0.1:$port" --pid "$server_pid" --warmup "$WARMUP" --duration "$DURATION" \
				--label "scenario=$id" --label "server=$server" --label "round=$round" \
				--label "commit=$commit" --label "date=$run_date" \
				--out "$result" "${words[@]}" "${extra[@]}" || true
			stop_server
			if [[ -s $result ]]; then
				cat "$result" >>"$raw"
				python3 - "$result" "$metric" "$round" "$server" "$title" <<-'EOF'
					import json, sys
					r = json.load(open(sys.argv[1]))
					m, rnd, server, title = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
					if "error" in r:
					    print(f"  [{rnd}] {title} / {server}: error: {r['error']}")
					elif r.get("scenario") == "attack":
					    g, c, a = r.get(m), r["calm"]["p99"], r["attack"]["p99"]
					    closed = sum(r.get("bystanders_closed", {}).values())
					    growth = "n/a" if g is None else f"{g:,.0f} B"
					    print(f"  [{rnd}] {title} / {server}: {growth} per attacker, bystander p99 {c:,.0f} -> {a:,.0f} us"
					          + (f", {closed} bystanders closed" if closed else ""))
					else:
					    gen = r.get("loadgen_cpu") or 0
					    print(f"  [{rnd}] {title} / {server}: {m} {r.get(m, 0):,.0f} (load gen {gen:.0%})")
				EOF
			else
				echo "  [$round] $title / $server: no result (timed out?)"
				echo "{\"error\":\"no result\",\"labels\":{\"scenario\":\"$id\",\"server\":\"$server\",\"round\":\"$round\"}}" >>"$raw"
			fi
			sleep 0.5
		done
	done
done
loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)

codec_note="not run"
if [[ $CODEC == 1 ]]; then
	echo "==> codec and masking benchmarks (criterion)"
	nice -n 10 cargo bench -p benches --no-run
	rm -rf "$TARGET_DIR/criterion"/{receive_*,send_*,fragmented_*,unmask}
	setsid taskset -c "$BENCH_CPU" cargo bench -p benches --bench codec --bench mask
	codec_note="run now"
elif [[ -d $TARGET_DIR/criterion ]]; then
	codec_note="criterion's last results in $TARGET_DIR/criterion (not rerun)"
fi

# The scenario table and the run's facts, for the report.
for line in "${SCENARIOS[@]}"; do echo "$line"; done | python3 -c '
import json, sys
out = []
for line in sys.stdin:
    fields = line.rstrip("\n").split("|")
    id, kind, title, args, metric, unit, better, target = fields[:8]
    server_args = fields[8] if len(fields) > 8 else ""
    t = []
    for alt in filter(None, target.split(";")):
        if alt.startswith("ratio:"):
            _, peer, value = alt.split(":")
            t.append({"kind": "ratio", "peer": peer, "value": float(value)})
        elif alt.startswith("atmost:"):
            t.append({"kind": "atmost", "peer": alt.split(":")[1]})
        elif alt.startswith("below:"):
            t.append({"kind": "below", "value": float(alt.split(":")[1])})
    out.append({"id": id, "kind": kind, "title": title, "args": args, "metric": metric,
                "unit": unit, "better": better, "target": t, "server_args": server_args})
json.dump(out, open(sys.argv[1], "w"), indent=1)
' "$work/scenarios.json"
python3 - "$work/meta.json" <<EOF
import json, sys, subprocess, platform
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
meta = {
    "commit": sh("git", "rev-parse", "--short", "HEAD"),
    # The results of an earlier run are not a change to what is measured.
    "dirty": bool(sh("git", "status", "--porcelain", "--", ".", ":!benches/results")),
    "date": sh("date", "-u", "+%Y-%m-%d %H:%M UTC"),
    "machine": f"{sh('nproc')} cores ({model}), Linux {platform.release()}",
    "rounds": $ROUNDS, "warmup": $WARMUP, "duration": $DURATION,
    "server_cpu": "$SERVER_CPU", "load_cpu": "$LOAD_CPU",
    "loadavg_before": "$loadavg_before", "loadavg_after": "$loadavg_after",
    "codec": "$codec_note",
    "note": "${NOTE:-}",
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
echo "==> report"
criterion_args=()
if [[ $codec_note != "not run" ]]; then criterion_args=(--criterion "$TARGET_DIR/criterion"); fi
peers=$(printf '%s,' "${SERVERS[@]}")
python3 benches/report.py --raw "$raw" --meta "$work/meta.json" --scenarios "$work/scenarios.json" \
	"${criterion_args[@]}" --out "$OUT" --ours "$OURS" --peers "${peers%,}"
echo "==> wrote $OUT/results.md, $OUT/results.json, $OUT/chart.svg, $OUT/raw.jsonl"
