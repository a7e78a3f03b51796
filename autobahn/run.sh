#!/usr/bin/env bash
# Runs the Autobahn|Testsuite against the project's WebSocket server and
# client testees and judges the result (report.py). All traffic stays on
# 127.0.0.1.
#
#   autobahn/run.sh [all|server|client]        (default: all)
#
# server: our echo server is tested by `wstest -m fuzzingclient`;
# client: our client is tested by `wstest -m fuzzingserver`.
# HTML reports and logs go to autobahn/reports/; a full run (both roles, all
# cases) also rewrites autobahn/RESULTS.md. Exit status is non-zero on any
# failure. See README.md for the environment variables.
#
# AUTOBAHN_TLS_DIR (a directory with cert.pem and key.pem, as scripts/test-ca.sh makes) runs
# both roles over wss: wstest connects to wss:// and its fuzzing server serves that
# certificate (run-wss.sh sets this up).
set -euo pipefail

# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ROOT=$(cd "$AUTOBAHN_DIR/.." && pwd)
REPORTS=${AUTOBAHN_REPORTS:-$AUTOBAHN_DIR/reports}
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release
MODE=${1:-all}
# The default apart: a `}` inside `${VAR:-...}` would end the expansion early.
DEFAULT_SERVER_CMD="$RELEASE/ws-mio-server --mode echo --admin-listen off --handshake-rate 0 --listen {addr}"
SERVER_CMD=${AUTOBAHN_SERVER_CMD:-$DEFAULT_SERVER_CMD}
CLIENT_CMD=${AUTOBAHN_CLIENT_CMD:-$RELEASE/autobahn-client}
SERVER_AGENT=${AUTOBAHN_SERVER_AGENT:-ws-mio-server}
CLIENT_AGENT=${AUTOBAHN_CLIENT_AGENT:-ws-proto-client}
CASES=${AUTOBAHN_CASES:-*}
EXCLUDE=${AUTOBAHN_EXCLUDE_CASES:-}
TIMEOUT=${AUTOBAHN_TIMEOUT:-1200}
export PYTHONUNBUFFERED=1
TLS_DIR=${AUTOBAHN_TLS_DIR:-}
SCHEME=ws
# The fuzzing server's TLS, as keys of its spec (wstest's -k/-c do not reach that mode).
WSS_SPEC=""
if [[ -n $TLS_DIR ]]; then
	SCHEME=wss
	WSS_SPEC="\"key\": \"$TLS_DIR/key.pem\", \"cert\": \"$TLS_DIR/cert.pem\","
fi

case $MODE in
all | server | client) ;;
*)
	echo "usage: $0 [all|server|client]" >&2
	exit 2
	;;
esac

say() { echo "autobahn: $*"; }

# Stops PID (a job of this shell): TERM, then KILL after 5 s.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# On any exit, stops the background processes this script started (its
# still-running jobs, nothing else).
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	local pid
	for pid in $(jobs -pr); do
		stop "$pid"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on 127.0.0.1:PORT, as long as PID lives.
wait_listening() {
	local port=$1 pid=$2 i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		if ss -Hltn "sport = :$port" | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Fails unless every socket listening on PORT is bound to 127.0.0.1.
check_loopback() {
	local port=$1 addrs
	addrs=$(ss -Hltn "sport = :$port" | awk '{ print $4 }')
	if [[ -z $addrs ]] || grep -qv "^127\.0\.0\.1:$port\$" <<<"$addrs"; then
		say "port $port is not bound to 127.0.0.1 only: ${addrs//$'\n'/ }"
		return 1
	fi
}

# Splits a testee command into words (no shell quoting) and fills in the
# placeholders {addr} {port} {url} {agent}; with none present, the default
# arguments given after the command are appended instead.
CMD=()
build_cmd() {
	local cmd=$1 addr=$2 port=$3 url=$4 agent=$5 w placeholder=0
	shift 5
	local words
	read -ra words <<<"$cmd"
	CMD=()
	for w in "${words[@]}"; do
		[[ $w == *'{'*'}'* ]] && placeholder=1
		w=${w//'{addr}'/$addr}
		w=${w//'{port}'/$port}
		w=${w//'{url}'/$url}
		w=${w//'{agent}'/$agent}
		CMD+=("$w")
	done
	((placeholder)) || CMD+=("$@")
	if [[ ! -x ${CMD[0]} ]] && ! command -v "${CMD[0]}" >/dev/null; then
		say "testee not found: ${CMD[0]} (build it, or set AUTOBAHN_SERVER_CMD / AUTOBAHN_CLIENT_CMD)"
		return 1
	fi
}

# Comma-separated patterns -> JSON list of strings.
json_list() {
	local IFS=, items=() p out=""
	read -ra items <<<"$1"
	for p in "${items[@]}"; do
		[[ -n $p ]] && out+="${out:+, }\"$p\""
	done
	printf '[%s]' "$out"
}

# Runs wstest (bounded by $TIMEOUT) with its output in LOG, printing every
# 30 s how many cases it has started. Returns wstest's exit status.
run_wstest() {
	local label=$1 log=$2 pid next=30 rc=0
	shift 2
	timeout --kill-after=30 "$TIMEOUT" "$AUTOBAHN_DIR/wstest" "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - phase_start >= next)); then
			say "$label: $(started_cases "$log")/$TOTAL cases started ($((SECONDS - phase_start))s)"
			next=$((next + 30))
		fi
	done
	wait "$pid" || rc=$?
	return "$rc"
}

started_cases() { grep -c '^Running test case ID' "$1" || true; }

exit_note() {
	if (($1 == 124)); then
		echo " (timed out after ${TIMEOUT}s)"
	fi
}

# --- server role: wstest fuzzingclient -> our server ----------------------
run_server() {
	local port spec log=$REPORTS/wstest-server.log pid rc=0
	phase_start=$SECONDS
	rm -rf "$REPORTS/server"
	port=$(free_port)
	build_cmd "$SERVER_CMD" "127.0.0.1:$port" "$port" "$SCHEME://127.0.0.1:$port" "$SERVER_AGENT" \
		--addr "127.0.0.1:$port" || return 1
	say "server: starting ${CMD[*]}"
	"${CMD[@]}" </dev/null >"$REPORTS/server-testee.log" 2>&1 &
	pid=$!
	if ! wait_listening "$port" "$pid"; then
		say "server: testee is not listening on 127.0.0.1:$port; see $REPORTS/server-testee.log"
		tail -n 20 "$REPORTS/server-testee.log"
		stop "$pid"
		return 1
	fi
	spec=$REPORTS/fuzzingclient.json
	cat >"$spec" <<-EOF
		{
		  "outdir": "$REPORTS/server",
		  "servers": [{"agent": "$SERVER_AGENT", "url": "$SCHEME://127.0.0.1:$port"}],
		  "cases": $CASES_JSON,
		  "exclude-cases": $EXCLUDE_JSON,
		  "exclude-agent-cases": {}
		}
	EOF
	say "server: wstest -m fuzzingclient against 127.0.0.1:$port (log: $log)"
	run_wstest server "$log" -m fuzzingclient -s "$spec" || rc=$?
	if ((rc)); then
		say "server: wstest exited with status $rc$(exit_note "$rc")"
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		say "server: the testee exited during the run; see $REPORTS/server-testee.log"
		rc=1
	fi
	stop "$pid"
	say "server: done in $((SECONDS - phase_start))s, $(started_cases "$log") cases started"
	return "$rc"
}

# --- client role: our client -> wstest fuzzingserver ----------------------
run_client() {
	local port spec log=$REPORTS/wstest-client.log wpid rc=0
	phase_start=$SECONDS
	rm -rf "$REPORTS/client"
	port=$(free_port)
	spec=$REPORTS/fuzzingserver.json
	cat >"$spec" <<-EOF
		{
		  "url": "$SCHEME://127.0.0.1:$port", $WSS_SPEC
		  "outdir": "$REPORTS/client",
		  "cases": $CASES_JSON,
		  "exclude-cases": $EXCLUDE_JSON,
		  "exclude-agent-cases": {}
		}
	EOF
	build_cmd "$CLIENT_CMD" "127.0.0.1:$port" "$port" "$SCHEME://127.0.0.1:$port" "$CLIENT_AGENT" \
		--url "$SCHEME://127.0.0.1:$port" --agent "$CLIENT_AGENT" || return 1
	say "client: wstest -m fuzzingserver on 127.0.0.1:$port (log: $log)"
	# --webport 0: no status web page (it would be a second listener).
	# wstest gets a minute more than the client testee, so a run that is too
	# slow ends with the testee's timeout, which names the cause.
	timeout --kill-after=30 "$((TIMEOUT + 60))" "$AUTOBAHN_DIR/wstest" -m fuzzingserver -s "$spec" --webport 0 \
		</dev/null >"$log" 2>&1 &
	wpid=$!
	if ! wait_listening "$port" "$wpid"; then
		say "client: wstest fuzzingserver did not start; see $log"
		tail -n 20 "$log"
		return 1
	fi
	check_loopback "$port" || return 1
	say "client: running ${CMD[*]}"
	local cpid next=30
	timeout --kill-after=30 "$TIMEOUT" "${CMD[@]}" </dev/null >"$REPORTS/client-testee.log" 2>&1 &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - phase_start >= next)); then
			say "client: $(started_cases "$log")/$TOTAL cases started ($((SECONDS - phase_start))s)"
			next=$((next + 30))
		fi
	done
	wait "$cpid" || rc=$?
	if ((rc)); then
		say "client: testee exited with status $rc$(exit_note "$rc"); see $REPORTS/client-testee.log"
		tail -n 20 "$REPORTS/client-testee.log"
	fi
	if ! kill -0 "$wpid" 2>/dev/null; then
		local wrc=0
		wait "$wpid" || wrc=$?
		say "client: wstest fuzzingserver exited early with status $wrc$(exit_note "$wrc"); see $log"
		rc=1
	fi
	stop "$wpid"
	say "client: done in $((SECONDS - phase_start))s, $(started_cases "$log") cases started"
	return "$rc"
}

# --- main ------------------------------------------------------------------
"$AUTOBAHN_DIR/install.sh"
# The faster UTF-8 check in config/py27/sitecustomize.py must answer as wsaccel's does.
(py27_env "$WSTEST_PREFIX" && "$WSTEST_PY" "$AUTOBAHN_DIR/check_utf8.py") | sed 's/^/autobahn: /'

if [[ ${AUTOBAHN_SKIP_BUILD:-0} != 1 ]]; then
	say "cargo build --release -p ws-mio-server -p autobahn"
	(cd "$ROOT" && cargo build --release --locked -p ws-mio-server -p autobahn)
fi

mkdir -p "$REPORTS"
CASES_JSON=$(json_list "$CASES")
EXCLUDE_JSON=$(json_list "$EXCLUDE")
phase_start=$SECONDS

# The case ids this selection must produce, from the installed suite itself.
expected=$REPORTS/expected-cases.json
printf '{"cases": %s, "exclude-cases": %s}\n' "$CASES_JSON" "$EXCLUDE_JSON" >"$REPORTS/selection.json"
(py27_env "$WSTEST_PREFIX" && "$WSTEST_PY" "$AUTOBAHN_DIR/list_cases.py" "$REPORTS/selection.json") >"$expected"
TOTAL=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$expected")
WSTEST_VERSION=$("$AUTOBAHN_DIR/wstest" --autobahnversion |
	awk '/^AutobahnTestSuite/ { s = $2 } /^Autobahn / { a = $2 } END { printf "autobahntestsuite %s (autobahn %s)", s, a }')
say "$WSTEST_VERSION, $TOTAL cases per role"

# The two roles run side by side: each is one single-threaded wstest, so on a
# machine with two cores or more this halves the wall time.
run_role() {
	trap cleanup EXIT
	trap 'exit 143' TERM
	"run_$1"
}
failed=0
report_args=(--expected "$expected")
role_pids=()
if [[ $MODE == all || $MODE == server ]]; then
	run_role server &
	role_pids+=($!)
	report_args+=(--server "$REPORTS/server" --server-agent "$SERVER_AGENT")
fi
if [[ $MODE == all || $MODE == client ]]; then
	run_role client &
	role_pids+=($!)
	report_args+=(--client "$REPORTS/client" --client-agent "$CLIENT_AGENT")
fi
for pid in "${role_pids[@]}"; do
	wait "$pid" || failed=1
done

# RESULTS.md records full runs only.
if [[ $MODE == all && $CASES == "*" && -z $EXCLUDE && ${AUTOBAHN_WRITE_RESULTS:-1} == 1 ]]; then
	report_args+=(--results "$AUTOBAHN_DIR/RESULTS.md")
fi
echo
python3 "$AUTOBAHN_DIR/report.py" "${report_args[@]}" --wstest-version "$WSTEST_VERSION" || failed=1
for role in server client; do
	if [[ $MODE == all || $MODE == "$role" ]]; then
		say "$role report: $REPORTS/$role/index.html"
	fi
done
exit "$failed"
