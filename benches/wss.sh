#!/usr/bin/env bash
# What ws-mio-server keeps of its throughput over TLS: the wss scenarios of run.sh beside their
# ws twins, ws-mio-server alone, into benches/results/wss/ (results.md and the rest as run.sh
# writes them, and kept.md: each wss figure as a share of its ws twin's).
#
#   benches/wss.sh                       # 3 rounds, 1 s warm-up + 3 s per run
#   ROUNDS=1 DURATION=1 benches/wss.sh   # a quick look
#   KEPT_ONLY=1 benches/wss.sh           # only kept.md again, from the results in OUT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${OUT:-benches/results/wss}
pairs="echo-d16-100x20B echo-d16-100x1KiB echo-d16-10x64KiB fanout-1k-d16"
only=""
for id in $pairs; do only+="$id $id-wss "; done
if [[ ${KEPT_ONLY:-0} != 1 ]]; then
	ROUNDS=${ROUNDS:-3} SERVERS=ws-mio-server OURS=ws-mio-server CODEC=0 ONLY="$only" OUT="$OUT" \
		NOTE=${NOTE:-"ws and wss side by side, ws-mio-server alone"} benches/run.sh
fi
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
    "choose), encrypting in the same worker thread; ws-load encrypts on its own core. "
    "*kept* divides the wss median by the ws one; *kept per core-s* does the same with each "
    "rate divided by the server's own CPU time, steadier on a shared machine.",
    "",
    "| scenario | ws | wss | kept | ws per server core-s | wss per server core-s | kept per core-s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for base in pairs:
    plain, tls = by_id.get(base), by_id.get(base + "-wss")
    if not plain or not tls:
        lines.append(f"| {base} | missing | missing | |")
        continue
    ours_plain, ours_tls = plain["servers"]["ws-mio-server"], tls["servers"]["ws-mio-server"]
    share = lambda x, y: f"{y / x:.0%}" if x and y else "n/a"
    figure = lambda x: "n/a" if x is None else f"{x:,.0f}"
    a, b = ours_plain.get("median"), ours_tls.get("median")
    ca, cb = ours_plain.get("per_server_core"), ours_tls.get("per_server_core")
    unit = "deliveries/s" if base.startswith("fanout") else "messages/s"
    lines.append(f"| {plain['title']} | {figure(a)} {unit} | {figure(b)} {unit} | {share(a, b)} "
                 f"| {figure(ca)} | {figure(cb)} | {share(ca, cb)} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "kept.md"), "w").write(text)
print(text)
PY
