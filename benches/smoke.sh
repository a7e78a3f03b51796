#!/usr/bin/env bash
# A short run of run.sh, for the test command: one echo and one fanout scenario, every server
# once, briefly, and one attack scenario against ws-mio-server, into a scratch directory. It
# fails unless every server served every scenario and the report holds every server's figures,
# its time split and a ratio for each peer, and the attack's memory and latency figures, so the
# script, the peers, the load generator and the report cannot rot. The figures of so short a
# run mean nothing and are thrown away.
#
#   benches/smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ROUNDS=1 WARMUP=0.3 DURATION=0.7 CODEC=0 ONLY="echo-d16-100x20B fanout-1k-d16 attack-flood" OUT="$out" \
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
attacks = results.get("attacks", [])
if [a["id"] for a in attacks] != ["attack-flood"]:
    problems.append(f"attacks reported: {[a['id'] for a in attacks]}")
for a in attacks:
    if not a.get("rounds"):
        problems.append(f"{a['id']}: no result {a.get('errors')}")
        continue
    for key in ("growth_per_attacker", "budget_per_attacker", "calm_p99_us", "attack_p99_us", "p99_ratio"):
        if a.get(key) is None:
            problems.append(f"{a['id']}: no {key}")
with open(os.path.join(out, "results.md")) as f:
    md = f.read()
for heading in ("## Servers under load", "## Targets", "## Where the servers' time goes",
                "## Hostile clients"):
    if heading not in md:
        problems.append(f"results.md lacks {heading!r}")
if not os.path.getsize(os.path.join(out, "chart.svg")):
    problems.append("chart.svg is empty")
if problems:
    print("benches/smoke.sh: " + "\n  ".join(["the report is incomplete:"] + problems), file=sys.stderr)
    sys.exit(1)
print("benches/smoke.sh: every server served both scenarios, ours the attack; the report is complete")
EOF
