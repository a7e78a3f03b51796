#!/usr/bin/env bash
# What ws-mio-server keeps of its throughput over TLS: the wss scenarios of run.sh beside their
# ws twins, ws-mio-server alone, into benches/results/wss/ (results.md and the rest as run.sh
# writes them, and kept.md: each wss figure as a share of its ws twin's).
#
#   benches/wss.sh                       # 3 rounds, 1 s warm-up + 3 s per run
#   ROUNDS=1 DURATION=1 benches/wss.sh   # a quick look
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${OUT:-benches/results/wss}
pairs="echo-d16-100x20B echo-d16-100x1KiB echo-d16-10x64KiB fanout-1k-d16"
only=""
for id in $pairs; do only+="$id $id-wss "; done
ROUNDS=${ROUNDS:-3} SERVERS=ws-mio-server OURS=ws-mio-server CODEC=0 ONLY="$only" OUT="$OUT" \
	NOTE=${NOTE:-"ws and wss side by side, ws-mio-server alone"} benches/run.sh
python3 - "$OUT" $pairs <<'PY'
import json, os, sys

out, pairs = sys.argv[1], sys.argv[2:]
results = json.load(open(os.path.join(out, "results.json")))
by_id = {sc["id"]: sc for sc in results["scenarios"]}
meta = results["meta"]
lines = [
    "# Throughput kept over TLS",
    "",
    f"ws-mio-server, one worker, against ws-load on another core; commit `{meta['commit']}`, "
    f"{meta['date']}, {meta['machine']}; {meta['rounds']} rounds of {meta['duration']} s, medians. "
    "wss is rustls 0.23 on ring, TLS 1.3 (AES-128-GCM or ChaCha20 as the client and CPU "
    "choose), encrypting in the same worker thread; ws-load encrypts on its own core.",
    "",
    "| scenario | ws | wss | kept |",
    "| --- | ---: | ---: | ---: |",
]
for base in pairs:
    plain, tls = by_id.get(base), by_id.get(base + "-wss")
    if not plain or not tls:
        lines.append(f"| {base} | missing | missing | |")
        continue
    a = plain["servers"]["ws-mio-server"].get("median")
    b = tls["servers"]["ws-mio-server"].get("median")
    kept = f"{b / a:.0%}" if a and b else "n/a"
    unit = "deliveries/s" if base.startswith("fanout") else "messages/s"
    lines.append(f"| {plain['title']} | {a:,.0f} {unit} | {b:,.0f} {unit} | {kept} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "kept.md"), "w").write(text)
print(text)
PY
