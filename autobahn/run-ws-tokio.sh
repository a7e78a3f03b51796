#!/usr/bin/env bash
# Autobahn|Testsuite through ws-tokio: its echo server (autobahn-tokio-server) and its client
# (autobahn-tokio-client) as the testees of run.sh, both roles, judged as strictly.
#
#   autobahn/run-ws-tokio.sh [quick|full]       (default: quick)
#
# quick: cases 1.* to 11.* (framing, pings, reserved bits, opcodes, fragments, UTF-8, close,
#        limits and performance); what test.sh runs.
# full:  every case, the permessage-deflate series 12.* and 13.* included; rewrites the
#        ws-tokio section of RESULTS.md.
# Reports go to autobahn/reports/ws-tokio/. Other settings as for run.sh (README.md).
set -euo pipefail

# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
RELEASE=${CARGO_TARGET_DIR:-$AUTOBAHN_DIR/../target}/release

case ${1:-quick} in
quick) export AUTOBAHN_CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,11.*' ;;
full) export AUTOBAHN_CASES='*' ;;
*)
	echo "usage: $0 [quick|full]" >&2
	exit 2
	;;
esac
export AUTOBAHN_SERVER_CMD="$RELEASE/autobahn-tokio-server --addr {addr}"
export AUTOBAHN_CLIENT_CMD="$RELEASE/autobahn-tokio-client"
export AUTOBAHN_SERVER_AGENT=ws-tokio-server
export AUTOBAHN_CLIENT_AGENT=ws-tokio-client
export AUTOBAHN_REPORTS=${AUTOBAHN_REPORTS:-$AUTOBAHN_DIR/reports/ws-tokio}
exec "$AUTOBAHN_DIR/run.sh" all
