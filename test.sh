#!/usr/bin/env bash
# The whole test suite, on a fresh machine: formatting, lints, every crate's tests (unit,
# property, integration, doc examples), the no_std build, the benchmarks' build and a short
# run of the server comparison, a short run of every fuzz target, the chat page in Chromium,
# and the Autobahn|Testsuite run for both roles, for ws-mio-server and the ws-proto client and
# (cases 1.* to 11.*) for ws-tokio's server and client and, over wss, for ws-mio-server and the
# ws-proto client; python-websockets against the server over wss.
# Installs what it needs (system packages through apt-get, redis-server among them, cargo-fuzz
# through cargo, Chromium and playwright-core, wstest into autobahn/.prefix). Exits non-zero on
# the first failure.
# FUZZ_SMOKE_SECONDS sets the time per fuzz target (default 15); AUTOBAHN_WS_TOKIO=full runs
# every Autobahn case through ws-tokio, compression included; AUTOBAHN_WSS=full the same over
# wss.
#
#   ./test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

step() { printf '\n==> %s (at %ds)\n' "$*" "$SECONDS"; }

step "system packages"
need=()
command -v ss >/dev/null || need+=(iproute2)
command -v cc >/dev/null || need+=(build-essential)
command -v python3 >/dev/null || need+=(python3)
# ws-redis's tests start a redis-server of their own on a loopback port, and Redis Clusters
# of three of them (Redis 7.0 or later: sharded pub/sub, ADDSLOTSRANGE, cluster-port).
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

step "ws-proto without std (no_std + alloc)"
cargo build -p ws-proto --no-default-features --locked

step "benchmarks build (criterion benches, load generator, peer servers)"
cargo bench -p benches --no-run --locked

step "benchmark script smoke run (run.sh, every server, two short scenarios, the report checked)"
benches/smoke.sh

step "fuzz smoke run: every cargo-fuzz target for ${FUZZ_SMOKE_SECONDS:=15}s (nightly)"
ws-fuzz/run.sh "$FUZZ_SMOKE_SECONDS"

step "python-websockets against the server over wss"
ws-mio-server/tests/python/run.sh

step "the chat page in a real browser (Chromium driven by playwright-core), over ws and wss"
ws-chat/tests/browser/run.sh

step "Autobahn|Testsuite, server and client"
autobahn/run.sh

# The same suite through ws-tokio's server and client: cases 1.* to 11.* by default (about two
# minutes); AUTOBAHN_WS_TOKIO=full adds the compression series 12.* and 13.* (see
# autobahn/README.md).
step "Autobahn|Testsuite through ws-tokio, server and client (${AUTOBAHN_WS_TOKIO:=quick})"
autobahn/run-ws-tokio.sh "$AUTOBAHN_WS_TOKIO"

# ws-mio-server and the ws-proto client over wss, with a CA made for the run: cases 1.* to 11.*
# by default (under a minute: both roles side by side, as in every run); AUTOBAHN_WSS=full adds
# 12.* and 13.*.
step "Autobahn|Testsuite over wss, server and client (${AUTOBAHN_WSS:=quick})"
autobahn/run-wss.sh "$AUTOBAHN_WSS"

echo
echo "test.sh: all checks passed"
