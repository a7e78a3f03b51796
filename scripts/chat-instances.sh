#!/usr/bin/env bash
# Three ws-chat instances joined through Redis on this machine, for trying the chat across
# instances: Redis first, then the instances on 127.0.0.1:9001, :9011 and :9021 (admin
# listeners on :9101, :9111, :9121), each given --redis. Open http://127.0.0.1:9001/ and
# http://127.0.0.1:9011/ side by side: what is said in a room on one shows on the other.
# Ctrl-C stops them all, Redis included.
#
#   scripts/chat-instances.sh            # one redis-server on 127.0.0.1:6379
#   scripts/chat-instances.sh cluster    # a Redis Cluster of three masters on :7001-:7003
#
# Needs redis-server and, for the cluster, redis-cli (Debian: apt-get install redis-server,
# which brings redis-tools). Persists nothing: the data goes with the processes. Builds
# ws-chat in release mode first (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=${1:-single}
case "$mode" in
single | cluster) ;;
*)
	echo "usage: $0 [single|cluster]" >&2
	exit 2
	;;
esac
command -v redis-server >/dev/null || {
	echo "redis-server is not installed (apt-get install redis-server)" >&2
	exit 1
}
if [[ $mode == cluster ]] && ! command -v redis-cli >/dev/null; then
	echo "redis-cli is not installed (apt-get install redis-tools)" >&2
	exit 1
fi

cargo build --release -p ws-chat
chat="${CARGO_TARGET_DIR:-target}/release/ws-chat"

work=$(mktemp -d)
pids=()
stop() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap stop EXIT
trap 'echo; echo stopping; exit 0' INT TERM

# Waits until the redis-server on port $1 answers PING (10 s at most).
wait_for_redis() {
	for _ in $(seq 100); do
		[[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]] && return 0
		sleep 0.1
	done
	echo "redis-server on port $1 did not start" >&2
	exit 1
}

redis_server() {
	redis-server --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$work" "$@" \
		>"$work/redis-$2.log" 2>&1 &
	pids+=($!)
}

if [[ $mode == single ]]; then
	redis_server --port 6379
	wait_for_redis 6379
	redis=redis://127.0.0.1:6379
else
	ports=(7001 7002 7003)
	urls=()
	for port in "${ports[@]}"; do
		redis_server --port "$port" --cluster-enabled yes --cluster-config-file "$work/nodes-$port.conf"
		urls+=("redis://127.0.0.1:$port")
	done
	for port in "${ports[@]}"; do wait_for_redis "$port"; done
	redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$work/create.log"
	for _ in $(seq 100); do
		redis-cli -p "${ports[0]}" cluster info | grep -q '^cluster_state:ok' && break
		sleep 0.1
	done
	redis=$(
		IFS=,
		echo "${urls[*]}"
	)
fi
echo "Redis ($mode): $redis"

for n in 0 1 2; do
	"$chat" --listen "127.0.0.1:90${n}1" --admin-listen "127.0.0.1:91${n}1" --redis "$redis" &
	pids+=($!)
	echo "ws-chat on ws://127.0.0.1:90${n}1 (admin http://127.0.0.1:91${n}1)"
done
echo "Ctrl-C stops them all."
wait -n "${pids[@]}" || true
echo "a process ended; stopping the others" >&2
