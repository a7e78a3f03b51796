#!/usr/bin/env bash
# Autobahn|Testsuite over wss: ws-mio-server with --tls-cert/--tls-key tested by wstest's
# fuzzing client, and our client (autobahn-client, trusting the test CA with --ca) tested by
# wstest's fuzzing server serving TLS, both judged as strictly as over ws. The CA and the
# server's certificate are made for the run (scripts/test-ca.sh), in the reports directory.
#
#   autobahn/run-wss.sh [quick|full]       (default: quick; AUTOBAHN_WSS sets it too)
#
# quick: cases 1.* to 11.*; what test.sh runs.
# full:  every case, the permessage-deflate series 12.* and 13.* included; rewrites the wss
#        section of RESULTS.md.
# Reports go to autobahn/reports/wss/. Other settings as for run.sh (README.md).
set -euo pipefail

# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ROOT=$(cd "$AUTOBAHN_DIR/.." && pwd)
RELEASE=${CARGO_TARGET_DIR:-$ROOT/target}/release

case ${1:-${AUTOBAHN_WSS:-quick}} in
quick) export AUTOBAHN_CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,11.*' ;;
full) export AUTOBAHN_CASES='*' ;;
*)
	echo "usage: $0 [quick|full]" >&2
	exit 2
	;;
esac
export AUTOBAHN_REPORTS=${AUTOBAHN_REPORTS:-$AUTOBAHN_DIR/reports/wss}
tls=$AUTOBAHN_REPORTS/tls
rm -rf "$tls"
"$ROOT/scripts/test-ca.sh" "$tls"
export AUTOBAHN_TLS_DIR=$tls
export AUTOBAHN_SERVER_CMD="$RELEASE/ws-mio-server --mode echo --admin-listen off --handshake-rate 0 --listen {addr} --tls-cert $tls/cert.pem --tls-key $tls/key.pem"
export AUTOBAHN_CLIENT_CMD="$RELEASE/autobahn-client --ca $tls/ca.pem"
export AUTOBAHN_SERVER_AGENT=ws-mio-server-wss
export AUTOBAHN_CLIENT_AGENT=ws-proto-client-wss
exec "$AUTOBAHN_DIR/run.sh" all
