#!/usr/bin/env bash
# System calls per thousand delivered messages, ws-mio-server beside the peers, counted by the kernel's
# tracepoints (perf stat) on the server process while ws-load measures it: every system call,
# and the writes, reads and epoll calls apart. Server and load generator pinned to different
# cores, as in run.sh. Prints a Markdown table.
#
#   benches/syscalls.sh                          # fanout to 1,000 and 10,000 members, 16 in flight
#   SERVERS="ws-mio-server uws" SCENARIOS="fanout --members 1000 --in-flight 16" benches/syscalls.sh
#
# Needs perf (linux-perf, installed with apt when missing) and kernel.perf_event_paranoid <= 2
# with tracefs mounted (root). Uses the release binaries run.sh builds; uWS when
# ../shared/peers/uws's peer was built by run.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-3}
PORT=${PORT:-9480}
default_servers="ws-mio-server tokio-tungstenite ws-tokio"
[[ -x $TARGET_DIR/uws-peer/uws-peer ]] && default_servers+=" uws"
read -r -a SERVERS <<<"${SERVERS:-$default_servers}"
IFS=';' read -r -a LOADS <<<"${SCENARIOS:-fanout --members 1000 --in-flight 16;fanout --members 10000 --in-flight 16}"

if ! command -v perf >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
fi
nice -n 10 cargo build --release -q -p ws-mio-server -p benches --bins
hard=$(ulimit -Hn)
if [[ $hard == unlimited || $hard -gt 20000 ]]; then hard=20000; fi
ulimit -n "$hard"

events=raw_syscalls:sys_enter
kinds=(sendto sendmsg write writev recvfrom recvmsg read readv epoll_wait epoll_ctl accept4 close)
for k in "${kinds[@]}"; do events+=",syscalls:sys_enter_$k"; done
work=$(mktemp -d)
server_pid=
trap '[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

start() { # name port
	local args
	case $1 in
	ws-mio-server)
		args=("$TARGET_DIR/release/ws-mio-server" --workers 1 --listen "127.0.0.1:$2" --admin-listen off
			--ping-interval 0 --max-connections 100000 --max-connections-per-ip 100000
			--handshake-rate 0 --mode broadcast) ;;
	uws) args=("$TARGET_DIR/uws-peer/uws-peer" --mode fanout --listen "127.0.0.1:$2") ;;
	*) args=("$TARGET_DIR/release/peer-${1#tokio-}" --mode fanout --listen "127.0.0.1:$2") ;;
	esac
	WS_LOG=warn setsid taskset -c "$SERVER_CPU" "${args[@]}" 2>>"$work/servers.log" &
	server_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "syscalls.sh: $1 did not listen" >&2
	return 1
}

echo "| scenario | server | deliveries/s | system calls per 1,000 deliveries | writes | reads | epoll_wait | epoll_ctl | accept, close |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for load in "${LOADS[@]}"; do
	read -r -a words <<<"$load"
	for server in "${SERVERS[@]}"; do
		PORT=$((PORT + 1))
		start "$server" "$PORT"
		rm -f "$work/window"
		taskset -c "$LOAD_CPU" "$TARGET_DIR/release/ws-load" --quiet --addr "127.0.0.1:$PORT" \
			--warmup "$WARMUP" --duration "$DURATION" --out "$work/load.json" \
			--window-file "$work/window" "${words[@]}" --protocol raw &
		load_pid=$!
		# Counted over the load generator's measured window alone: not its connecting, warming
		# up or leaving.
		until grep -q open "$work/window" 2>/dev/null || ! kill -0 "$load_pid" 2>/dev/null; do sleep 0.01; done
		perf stat -x, -e "$events" -p "$server_pid" -o "$work/perf.csv" 2>/dev/null &
		perf_pid=$!
		until grep -q closed "$work/window" 2>/dev/null || ! kill -0 "$load_pid" 2>/dev/null; do sleep 0.01; done
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		wait "$load_pid" || true
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
		python3 - "$work/load.json" "$work/perf.csv" "$load" "$server" "$DURATION" <<-'PY'
			import json, sys
			load, perf, title, server, duration = sys.argv[1:6]
			r = json.load(open(load))
			rate = r.get("deliveries_per_sec") or 0
			counts = {}
			for line in open(perf):
			    f = line.strip().split(",")
			    if len(f) > 2 and f[0].replace(".", "").isdigit():
			        counts[f[2].split(":")[-1]] = float(f[0])
			n = rate * r.get("window_s", float(duration)) / 1000  # thousands of deliveries
			per = lambda *ks: sum(counts.get("sys_enter_" + k, 0) for k in ks) / n if n else float("nan")
			total = counts.get("sys_enter", 0) / n if n else float("nan")
			print(f"| {title} | {server} | {rate:,.0f} | {total:.1f} | "
			      f"{per('sendto', 'sendmsg', 'write', 'writev'):.1f} | "
			      f"{per('recvfrom', 'recvmsg', 'read', 'readv'):.1f} | "
			      f"{per('epoll_wait'):.1f} | {per('epoll_ctl'):.1f} | {per('accept4', 'close'):.1f} |")
		PY
	done
done
