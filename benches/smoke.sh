#!/usr/bin/env bash
# A short run of run.sh, for the test command: one echo and one fanout scenario, every server
# once, briefly, into a scratch directory. It fails unless every server served every scenario
# and the report holds every server's figures, its time split and a ratio for each peer, so the
# script, the peers, the load generator and the report cannot rot. The figures of so short a
# run mean nothing and are thrown away.
#
#   benches/smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ROUNDS=1 WARMUP=0.3 DURATION=0.7 CODEC=0 ONLY="echo-d16-100x20B fanout-1k-d16" OUT="$out" \
	benches/run.sh
python3 - "$out" <<'EOF'
import json, os, sys

out = sys.argv[1]
with open(os.path.join(out, "results.json")) as f:
    results = json.load(f)
ids = sorted(sc["id"] for sc in results["scenarios"])
problems = []
if ids != ["echo-d16-100x20B", "fanout-1k-d16"]:
    problems.append(f"scenarios reported: {ids}")
for sc in results["scenarios"]:
    for server, s in sc["servers"].items():
        where = f"{sc['id']} / {server}"
        if not s.get("rounds"):
            problems.append(f"{where}: no result {s.get('errors')}")
            continue
        if not s["median"] > 0:
            problems.append(f"{where}: figure {s['median']}")
        for key in ("server_cpu", "kernel_share", "kernel_us", "user_us", "segments_per"):
            if s.get(key) is None:
                problems.append(f"{where}: no {key}")
    for peer, ratio in sc["ratios"].items():
        if ratio is None:
            problems.append(f"{sc['id']}: no ratio against {peer}")
    if sc.get("target") is None or sc["target"].get("kernel_bound") is None:
        problems.append(f"{sc['id']}: no target check with its kernel bound")
with open(os.path.join(out, "results.md")) as f:
    md = f.read()
for heading in ("## Servers under load", "## Targets", "## Where the servers' time goes"):
    if heading not in md:
        problems.append(f"results.md lacks {heading!r}")
if not os.path.getsize(os.path.join(out, "chart.svg")):
    problems.append("chart.svg is empty")
if problems:
    print("benches/smoke.sh: " + "\n  ".join(["the report is incomplete:"] + problems), file=sys.stderr)
    sys.exit(1)
print("benches/smoke.sh: every server served both scenarios; the report is complete")
EOF
