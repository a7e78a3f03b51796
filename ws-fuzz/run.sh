#!/usr/bin/env bash
# Fuzzes ws-proto and ws-mio-server with cargo-fuzz on nightly: every target (or those named)
# for SECONDS each, with the protocol dictionary and a scratch copy of the seed corpus
# (corpus-large/<target>, git-ignored, kept between runs so long campaigns build on each
# other). Installs cargo-fuzz if missing. Exits non-zero on the first crash or invariant
# failure, naming the artifact.
#
#   ws-fuzz/run.sh [SECONDS] [TARGET...]      default: 30 seconds, every target
#
# Environment: FUZZ_ARGS adds libFuzzer flags (e.g. "-fork=2" or "-jobs=4 -workers=2");
# FUZZ_SANITIZER picks cargo-fuzz's sanitizer (default address; "none" runs faster).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

seconds=${1:-30}
shift || true
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
all_targets=(frame_decoder server_handshake client_response connection roundtrip utf8_differential mask_differential deflate server)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
	[[ -f fuzz/fuzz_targets/$t.rs ]] || { echo "unknown target $t (have: ${all_targets[*]})" >&2; exit 2; }
done
sanitizer=${FUZZ_SANITIZER:-address}
read -r -a extra <<<"${FUZZ_ARGS:-}"
# Low priority: the machine may be shared (CARGO_BUILD_JOBS=1 leaves it a core too).
run() { nice -n 19 "$@"; }

phase_start=$SECONDS
phase() { printf '==> %s (%ds)\n' "$1" $((SECONDS - phase_start)); phase_start=$SECONDS; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
	echo "==> installing the nightly toolchain"
	rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "==> installing cargo-fuzz"
	run cargo install cargo-fuzz --locked
fi
phase "toolchain and cargo-fuzz ready: $(cargo fuzz --version)"

run cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"
phase "fuzz targets built"

mkdir -p corpus-large artifacts logs
summary=()
for t in "${targets[@]}"; do
	scratch=corpus-large/$t
	mkdir -p "$scratch" "artifacts/$t"
	cp -n corpus/"$t"/* "$scratch"/ 2>/dev/null || true
	log=logs/$t.log
	echo "==> $t: ${seconds}s, corpus $scratch ($(ls "$scratch" | wc -l) files)"
	status=0
	run cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$t" "$scratch" -- \
		-max_total_time="$seconds" -dict=ws.dict -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="artifacts/$t/" -print_final_stats=1 "${extra[@]}" \
		</dev/null >"$log" 2>&1 || status=$?
	if ((status != 0)); then
		tail -n 60 "$log"
		echo
		echo "FAILED: $t (exit $status); log $here/$log"
		grep -ho 'Test unit written to [^ ]*' "$log" | sed "s|written to |written to $here/|" || true
		echo "reproduce: cd $here && cargo +nightly fuzz run --fuzz-dir fuzz $t <artifact>"
		exit 1
	fi
	# libFuzzer's closing status line: total runs, coverage, features, speed.
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' <<<"$last" | tail -n 1)
	ft=$(grep -o 'ft: [0-9]*' <<<"$last" | tail -n 1)
	runs=$(grep -o '^#[0-9]*' <<<"$last" | tr -d '#')
	eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
	summary+=("$(printf '%-18s %10s runs %8s exec/s  %-10s %s' "$t" "$runs" "$eps" "$cov" "$ft")")
	phase "$t done: $cov $ft, $eps exec/s"
done
echo
echo "All targets ran clean:"
printf '  %s\n' "${summary[@]}"
