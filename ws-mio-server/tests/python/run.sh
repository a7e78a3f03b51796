#!/usr/bin/env bash
# python-websockets, the Python reference implementation, against ws-mio-server over wss:
# makes a venv (target/python-venv, pinned websockets from PyPI), a CA and certificate for the
# run (scripts/test-ca.sh), starts the release binary with them on a free loopback port, runs
# wss_client.py, stops the server. Exits with the client's status.
#
#   ws-mio-server/tests/python/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
VENV=$TARGET/python-venv
WEBSOCKETS=websockets==15.0.1

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends python3-venv
fi
if ! "$VENV/bin/python" -c 'import websockets, sys; sys.exit(websockets.__version__ != "'"${WEBSOCKETS#*==}"'")' 2>/dev/null; then
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check "$WEBSOCKETS"
fi

(cd "$ROOT" && cargo build --release --locked -q -p ws-mio-server)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ws-python.XXXXXX")
PID=""
cleanup() {
	if [[ -n $PID ]]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/scripts/test-ca.sh" "$WORK/tls"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TARGET/release/ws-mio-server" --listen "127.0.0.1:$PORT" --admin-listen off \
	--tls-cert "$WORK/tls/cert.pem" --tls-key "$WORK/tls/key.pem" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	kill -0 "$PID" 2>/dev/null || break
	sleep 0.1
done
status=0
"$VENV/bin/python" "$HERE/wss_client.py" "wss://localhost:$PORT" "$WORK/tls/ca.pem" || status=$?
if ((status)); then
	echo "== server log"
	cat "$WORK/server.log"
fi
exit "$status"
