#!/usr/bin/env python3
"""Turns the runs of benches/run.sh into results.md, results.json and chart.svg.

Standard library only. Inputs: the load generator's JSON lines (one per server, scenario and
round, tagged with labels), the run's metadata, and optionally criterion's estimates for the
codec and masking benchmarks.

    report.py --raw raw.jsonl --meta meta.json --scenarios scenarios.json \
              [--criterion target/criterion] --out benches/results
"""

import argparse
import json
import os
import statistics
from xml.sax.saxutils import escape

# The server the others are compared with, and the others; --ours and --peers change them
# (run.sh's OURS and SERVERS), for a comparison of ws-tokio with tokio-tungstenite.
OURS = "ws-mio-server"
PEERS = ["tokio-tungstenite", "fastwebsockets", "ws-tokio", "uws"]
SERVERS = [OURS] + PEERS
COLORS = {"ws-mio-server": "#2b6cb0", "tokio-tungstenite": "#dd6b20", "fastwebsockets": "#38a169",
          "ws-tokio": "#805ad5", "uws": "#d53f8c",
          "ws-proto": "#2b6cb0", "ws-proto in place": "#63b3ed", "tungstenite": "#dd6b20"}
# The codec each server is built on, for the chart's legend.
CODEC_OF = {"ws-mio-server": "ws-proto", "ws-tokio": "ws-proto",
            "tokio-tungstenite": "tungstenite", "fastwebsockets": "fastwebsockets",
            "uws": "uWebSockets"}
# ws-proto's receive benchmarks run twice: owned messages, and in place (borrowed from the read
# buffer); the others deliver owned payloads.
CODEC_LIBS = ("ws-proto", "ws-proto in place", "tungstenite", "fastwebsockets")
# A load generator at or above this share of its core measured itself: the rate is a floor.
SATURATED = 0.95


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_rate(v):
    if v is None:
        return "n/a"
    if v >= 1e9:
        return f"{v / 1e9:.2f}G"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt_bytes(v):
    if v is None:
        return "n/a"
    if v < 0:
        return "-" + fmt_bytes(-v)
    if v >= 1 << 20:
        return f"{v / (1 << 20):.1f} MiB"
    if v >= 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v:.0f} B"


def fmt_value(v, unit):
    return fmt_bytes(v) if unit == "bytes" else fmt_rate(v)


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def fmt_share(v):
    return "n/a" if v is None else f"{v * 100:.0f}%"


def fmt_cpu(run, wait):
    if run is None:
        return "n/a"
    return fmt_share(run) + (f" (+{wait * 100:.0f}% wait)" if wait else "")


def fmt_us(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.0f} µs"


def load_raw(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def runs_by_commit(runs, meta):
    """The runs the figures come from (one, unless merged): commit, date and scenarios each."""
    by = {}
    for r in runs:
        labels = r.get("labels", {})
        key = (labels.get("commit", meta["commit"]), labels.get("date", meta["date"]))
        scenarios = by.setdefault(key, [])
        if labels.get("scenario") not in scenarios:
            scenarios.append(labels.get("scenario"))
    return [{"commit": c, "date": d, "scenarios": s} for (c, d), s in sorted(by.items(), key=lambda kv: kv[0][1])]


def summarize(scenarios, runs):
    """Per scenario and server: median, min and max of the figure and the side figures."""
    out = []
    for sc in scenarios:
        metric, better = sc["metric"], sc["better"]
        entry = {k: sc[k] for k in ("id", "title", "metric", "unit", "better", "kind")}
        entry["servers"] = {}
        for server in SERVERS:
            mine = [r for r in runs if r.get("labels", {}).get("scenario") == sc["id"]
                    and r.get("labels", {}).get("server") == server]
            ok = [r for r in mine if "error" not in r and r.get(metric) is not None]
            values = [r[metric] for r in ok]
            errors = [r["error"] for r in mine if "error" in r]
            if not values:
                entry["servers"][server] = {"rounds": 0, "errors": errors}
                continue
            lat = [r.get("latency_us", {}).get("p99") for r in ok] if sc["kind"] != "connect" \
                else [r.get("handshake_us", {}).get("p99") for r in ok]
            cpu = [r.get("loadgen_cpu") for r in ok]
            demand = [(r.get("loadgen_cpu") or 0) + (r.get("loadgen_wait") or 0) for r in ok]
            srv = [r.get("server_cpu") for r in ok]
            per_core = [r[metric] / r["server_cpu"] for r in ok
                        if r.get("server_cpu") and sc["kind"] != "connect"]
            s = {
                "rounds": len(values),
                "median": median(values),
                "min": min(values),
                "max": max(values),
                "p99_us": median(lat),
                "p50_us": median([r.get("latency_us", {}).get("p50") for r in ok]),
                "loadgen_cpu": median(cpu),
                "loadgen_cpu_max": max([c for c in cpu if c is not None], default=None),
                "loadgen_wait": median([r.get("loadgen_wait") for r in ok]),
                "loadgen_demand_max": max(demand, default=None),
                "server_cpu": median(srv),
                "server_wait": median([r.get("server_wait") for r in ok]),
                "cpu_busy": [median(c) for c in zip(*[r["cpu_busy"] for r in ok if r.get("cpu_busy")])],
                "per_server_core": median(per_core),
                "errors": errors,
            }
            if sc["kind"] == "connect":
                s["connections_per_sec"] = median([r.get("connections_per_sec") for r in ok])
            else:
                s.update(time_split(ok, metric))
            # Floor: the load generator ran, or wanted to run, all the time.
            s["floor"] = s["loadgen_demand_max"] is not None and s["loadgen_demand_max"] >= SATURATED
            entry["servers"][server] = s
        ours = entry["servers"].get(OURS, {}).get("median")
        entry["ratios"] = {}
        for peer in PEERS:
            theirs = entry["servers"].get(peer, {}).get("median")
            entry["ratios"][peer] = ours / theirs if ours and theirs else None
        entry["target"] = check_target(sc, entry)
        out.append(entry)
    return out


def summarize_attacks(scenarios, runs):
    """Per attack scenario (ws-mio-server alone): the server's memory growth per attacker and
    the bystanders' latency calm and under attack, medians over rounds."""
    out = []
    for sc in scenarios:
        mine = [r for r in runs if r.get("labels", {}).get("scenario") == sc["id"]
                and r.get("labels", {}).get("server") == OURS]
        ok = [r for r in mine if "error" not in r]
        entry = {k: sc[k] for k in ("id", "title", "metric", "unit")}
        entry["rounds"] = len(ok)
        entry["errors"] = [r["error"] for r in mine if "error" in r]
        if not ok:
            out.append(entry)
            continue
        growth = [r.get("rss_growth_per_attacker_bytes") for r in ok]
        growth = [g for g in growth if g is not None]
        lat = lambda window, q: median([r.get(window, {}).get(q) for r in ok])
        rate = lambda window: median([r.get("deliveries_per_sec", {}).get(window) for r in ok])
        entry.update({
            "attack_kind": ok[0].get("params", {}).get("kind"),
            "attackers": ok[0].get("params", {}).get("attackers"),
            "bystanders": ok[0].get("params", {}).get("bystanders"),
            "growth_per_attacker": median(growth),
            "growth_min": min(growth, default=None),
            "growth_max": max(growth, default=None),
            "retained_per_attacker": median([r.get("rss_retained_per_attacker_bytes") for r in ok]),
            "budget_per_attacker": median([r.get("budget_per_attacker_bytes") for r in ok]),
            "over_budget_rounds": sum(1 for r in ok if r.get("over_budget")),
            "calm_p50_us": lat("calm", "p50"), "calm_p99_us": lat("calm", "p99"),
            "attack_p50_us": lat("attack", "p50"), "attack_p99_us": lat("attack", "p99"),
            "p99_ratio": median([r.get("bystander_p99_ratio") for r in ok]),
            "calm_deliveries_per_sec": rate("calm"), "attack_deliveries_per_sec": rate("attack"),
            "bystanders_closed": sum(sum((r.get("bystanders_closed") or {}).values()) for r in ok),
            "attackers_closed_by_server": median([r.get("attackers", {}).get("closed_by_server") for r in ok]),
            "server_cpu": median([r.get("server_cpu") for r in ok]),
            "loadgen_cpu": median([r.get("loadgen_cpu") for r in ok]),
        })
        out.append(entry)
    return out


def attack_section(attacks):
    if not attacks:
        return []
    lines = ["", "## Hostile clients (ws-mio-server)", "",
             "Attackers beside ordinary clients (bystanders, one message in flight each), "
             "`ws-load attack`; medians over rounds. *RSS growth* is the server's peak resident "
             "memory during the attack over its memory before, per attacker; *budget* what the "
             "server may hold for one attacker by design (its queue up to the high-water mark "
             "plus the largest message, doubled for a growing buffer, and two reads; for a "
             "deflate bomb 1.5 times the message limit, as the inflated message grows by doubling, and its "
             "inflater); *after* what it still held per attacker once the "
             "attackers had left and the bystanders had gone quiet. Bystander latency is the "
             "round trip (publish to delivery in the slow room), calm and under attack, with "
             "the bystanders' deliveries per second.", "",
             "| scenario | RSS growth per attacker (min–max) | budget | after | bystander p50 calm → attack | bystander p99 calm → attack | p99 ratio | deliveries/s calm → attack | bystanders closed |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in attacks:
        if not a.get("rounds"):
            err = "; ".join(a.get("errors", []))[:120]
            lines.append(f"| {escape(a['title'])} | failed{': ' + err if err else ''} | | | | | | | |")
            continue
        growth = (f"{fmt_bytes(a['growth_per_attacker'])} ({fmt_bytes(a['growth_min'])}–"
                  f"{fmt_bytes(a['growth_max'])})")
        if a.get("over_budget_rounds"):
            growth += f", over budget in {a['over_budget_rounds']} of {a['rounds']}"
        if a.get("errors"):
            growth += f"; {len(a['errors'])} round(s) failed"
        lines.append(
            f"| {escape(a['title'])} | {growth} | {fmt_bytes(a.get('budget_per_attacker'))} | "
            f"{fmt_bytes(a.get('retained_per_attacker'))} | "
            f"{fmt_us(a.get('calm_p50_us'))} → {fmt_us(a.get('attack_p50_us'))} | "
            f"{fmt_us(a.get('calm_p99_us'))} → {fmt_us(a.get('attack_p99_us'))} | "
            f"{fmt_ratio(a.get('p99_ratio'))} | "
            f"{fmt_rate(a.get('calm_deliveries_per_sec'))} → {fmt_rate(a.get('attack_deliveries_per_sec'))} | "
            f"{a.get('bystanders_closed', 0)} |")
    return lines


def time_split(runs, metric):
    """Where a server's time went, per message (or delivery), as medians over rounds: kernel
    and user microseconds, TCP segments sent on the machine, and the rate at which the kernel's
    part alone would have kept the server's core busy (its messages per kernel-second)."""
    kernel, user, segments, bound, share = [], [], [], [], []
    for r in runs:
        rate, cpu, k = r.get(metric), r.get("server_cpu"), r.get("server_kernel_share")
        if not rate or not cpu or k is None:
            continue
        share.append(k)
        kernel.append(cpu * k / rate * 1e6)
        user.append(cpu * (1 - k) / rate * 1e6)
        if k > 0:
            bound.append(rate / (cpu * k))
        if r.get("tcp_segments_sent") is not None and r.get("window_s"):
            segments.append(r["tcp_segments_sent"] / (rate * r["window_s"]))
    return {"kernel_share": median(share), "kernel_us": median(kernel), "user_us": median(user),
            "segments_per": median(segments), "kernel_bound": median(bound)}


def check_target(sc, entry):
    """The scenario's target checked: the first of its alternatives whose peer was measured."""
    alternatives = sc.get("target") or []
    if isinstance(alternatives, dict):
        alternatives = [alternatives]
    measured = lambda peer: entry["servers"].get(peer, {}).get("median") is not None
    target = next((t for t in alternatives if "peer" not in t or measured(t["peer"])), None)
    if not target:
        return None
    ours = entry["servers"].get(OURS, {}).get("median")
    if target["kind"] == "atmost":
        theirs = entry["servers"][target["peer"]]["median"]
        met = ours is not None and ours <= theirs
        return {"text": f"≤ {target['peer']} ({fmt_bytes(theirs)})", "met": met, "actual": ours,
                "shortfall": None}
    if target["kind"] == "ratio":
        ratio = entry["ratios"].get(target["peer"])
        met = ratio is not None and ratio >= target["value"]
        text = f"≥ {target['value']}x {target['peer']}"
        mine = entry["servers"].get(OURS, {}).get("per_server_core")
        theirs = entry["servers"].get(target["peer"], {}).get("per_server_core")
        bound = entry["servers"].get(OURS, {}).get("kernel_bound")
        peer = entry["servers"].get(target["peer"], {}).get("median")
        return {"text": text, "met": met, "actual": ratio,
                "per_core": mine / theirs if mine and theirs else None,
                "kernel_bound": bound / peer if bound and peer else None,
                "shortfall": None if met or ratio is None else target["value"] / ratio}
    if target["kind"] == "below":
        met = ours is not None and ours < target["value"]
        return {"text": f"< {fmt_bytes(target['value'])}", "met": met, "actual": ours,
                "shortfall": None}
    return None


def read_criterion(root):
    """criterion's point estimates: {group: {function: {value: (ns per iteration, throughput)}}}."""
    found = {}
    if not root or not os.path.isdir(root):
        return found
    for dirpath, _dirs, files in os.walk(root):
        if not dirpath.endswith(os.sep + "new") or "estimates.json" not in files:
            continue
        try:
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        ns = (est.get("median") or est["mean"])["point_estimate"]
        thr = bench.get("throughput") or {}
        found.setdefault(bench["group_id"], {}).setdefault(bench.get("function_id"), {})[
            bench.get("value_str")] = {"ns": ns, "throughput": thr}
    return found


def per_second(entry):
    """(elements per second, bytes per second) of one criterion estimate."""
    thr, secs = entry["throughput"], entry["ns"] / 1e9
    if "ElementsAndBytes" in thr:
        e = thr["ElementsAndBytes"]
        return e["elements"] / secs, e["bytes"] / secs
    if "Bytes" in thr:
        return None, thr["Bytes"] / secs
    if "Elements" in thr:
        return thr["Elements"] / secs, None
    return None, None


SIZE_ORDER = ["16B", "64B", "125B", "256B", "1KiB", "4KiB", "16KiB", "64KiB", "256KiB", "1MiB"]


def size_key(s):
    base = s.split("x")[0]
    return (SIZE_ORDER.index(base) if base in SIZE_ORDER else 99, s)


def codec_summary(crit):
    rows = []
    for group in sorted(g for g in crit if g.split("/")[0] in ("receive", "send", "fragmented")):
        funcs = crit[group]
        values = sorted({v for f in funcs.values() for v in f}, key=size_key)
        for value in values:
            row = {"group": group, "case": value, "libs": {}}
            for lib in CODEC_LIBS:
                e = funcs.get(lib, {}).get(value)
                if e:
                    msgs, bps = per_second(e)
                    row["libs"][lib] = {"messages_per_sec": msgs, "bytes_per_sec": bps}
            # ratios: owned messages; ratios_in_place: ws-proto's in-place receive.
            for key, ours_lib in (("ratios", "ws-proto"), ("ratios_in_place", "ws-proto in place")):
                ours = row["libs"].get(ours_lib, {}).get("messages_per_sec")
                row[key] = {}
                for lib in ("tungstenite", "fastwebsockets"):
                    theirs = row["libs"].get(lib, {}).get("messages_per_sec")
                    row[key][lib] = ours / theirs if ours and theirs else None
            if group.startswith("receive/") and value in ("16B", "125B", "1KiB"):
                # Checked with ws-proto's faster receive path, in place where it was measured.
                key = "ratios_in_place" if row["ratios_in_place"]["tungstenite"] else "ratios"
                ft, tt = row[key]["fastwebsockets"], row[key]["tungstenite"]
                row["target"] = {"text": "≥ 1.5x fastwebsockets and ≥ 2x tungstenite",
                                 "api": "in place" if key == "ratios_in_place" else "owned",
                                 "met": bool(ft and tt and ft >= 1.5 and tt >= 2.0)}
            rows.append(row)
    mask = []
    funcs = crit.get("unmask", {})
    for value in sorted({v for f in funcs.values() for v in f}, key=lambda v: int(v)):
        row = {"size": int(value)}
        for name in ("apply_mask", "bytewise", "xor_u64"):
            e = funcs.get(name, {}).get(value)
            row[name] = per_second(e)[1] if e else None
        if row.get("apply_mask") and row.get("xor_u64"):
            row["share_of_xor"] = row["apply_mask"] / row["xor_u64"]
        if row["size"] == 64 << 10 and "share_of_xor" in row:
            row["target"] = {"text": "≥ 80% of the plain XOR", "met": row["share_of_xor"] >= 0.8}
        mask.append(row)
    return rows, mask


def size_label(n):
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n >> 10} KiB"
    return f"{n} B"


def markdown(meta, summary, codec, mask, attacks=()):
    lines = ["# Benchmark results", ""]
    lines.append(f"Commit `{meta['commit']}`{' (with uncommitted changes)' if meta.get('dirty') else ''}, "
                 f"{meta['date']}, on {meta['machine']}.")
    lines.append("")
    lines.append(f"Configuration: {meta['rounds']} round(s) per server and scenario, "
                 f"servers in rotated order; {meta['warmup']} s warm-up and {meta['duration']} s "
                 f"measured per run; server pinned to CPU {meta['server_cpu']}, load generator "
                 f"(`ws-load`, one thread) to CPU {meta['load_cpu']}. Load average before/after "
                 f"the run: {meta.get('loadavg_before', '?')} / {meta.get('loadavg_after', '?')}.")
    if meta.get("note"):
        lines += ["", meta["note"]]
    if len(meta.get("runs", [])) > 1:
        lines += ["", "The figures come from more than one run (`MERGE=1`): " + "; ".join(
            f"commit `{r['commit']}` ({r['date']}): {', '.join(f'`{s}`' for s in r['scenarios'])}"
            for r in meta["runs"]) + "."]
    lines += ["", "Figures are medians over the rounds, with min–max. *ours/peer* divides our "
              "median by the peer's (for memory, lower is better). *load gen* and *server* are "
              "the share of one core each process ran during the measured window, and in "
              "brackets the share it spent runnable but waiting for a CPU that other work held "
              "(medians over rounds). When the load generator ran or wanted to run 95% of the "
              "time or more in some round, the rate is a floor for the server, not a "
              "measurement, and is marked ≥. *per server core-s* divides the rate by the "
              "server's own CPU time: on a shared machine it is steadier than the rate.", ""]
    lines.append("## Servers under load")
    lines.append("")
    lines.append("| scenario | server | figure (min–max) | p99 latency | load gen | server | per server core-s | ours/peer |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for sc in summary:
        unit = sc["unit"]
        first = True
        for server in SERVERS:
            s = sc["servers"].get(server, {})
            if not s.get("rounds") and not s.get("errors"):
                continue  # not run: a scenario of ours alone
            name = escape(sc["title"]) if first else ""
            first = False
            if not s.get("rounds"):
                err = "; ".join(s.get("errors", []))[:120]
                lines.append(f"| {name} | {server} | failed{': ' + err if err else ''} | | | | | |")
                continue
            floor = "≥ " if s.get("floor") and unit != "bytes" else ""
            fig = f"{floor}{fmt_value(s['median'], unit)} ({fmt_value(s['min'], unit)}–{fmt_value(s['max'], unit)})"
            if sc["kind"] == "connect":
                fig += f"; {fmt_rate(s.get('connections_per_sec'))} conn/s"
            ratio = ""
            if server != OURS:
                ratio = fmt_ratio(sc["ratios"].get(server))
            per_core = fmt_rate(s.get("per_server_core")) if sc["kind"] != "connect" else ""
            lines.append(f"| {name} | {server} | {fig} | {fmt_us(s.get('p99_us'))} | "
                         f"{fmt_cpu(s.get('loadgen_cpu'), s.get('loadgen_wait'))} | "
                         f"{fmt_cpu(s.get('server_cpu'), s.get('server_wait'))} | "
                         f"{per_core} | {ratio} |")
    lines += ["", "Units: echo in messages/s (round trips), fanout in deliveries/s (messages "
              "received by members), idle memory in server resident memory per open connection "
              "(p99 column: handshake latency).", ""]
    lines.append("## Targets")
    lines.append("")
    lines.append("*kernel bound*: the ratio our server would reach if its own code took no time "
                 "at all, the kernel's work per message staying what it was (see below).")
    lines.append("")
    lines.append("| what | target | measured | per server core-s | kernel bound | met |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for sc in summary:
        t = sc.get("target")
        if not t:
            continue
        actual = fmt_bytes(t["actual"]) if sc["unit"] == "bytes" else fmt_ratio(t["actual"])
        miss = ""
        if not t["met"] and t.get("shortfall"):
            miss = f" (short by {(1 - 1 / t['shortfall']) * 100:.0f}%)"
        per_core = fmt_ratio(t.get("per_core")) if "per_core" in t else ""
        bound = fmt_ratio(t.get("kernel_bound")) if "kernel_bound" in t else ""
        lines.append(f"| {escape(sc['title'])} | {t['text']} | {actual} | {per_core} | {bound} | {'yes' if t['met'] else 'no' + miss} |")
    for row in codec:
        t = row.get("target")
        if t:
            key = "ratios_in_place" if t.get("api") == "in place" else "ratios"
            ratios = f"{t.get('api', 'owned')}: {fmt_ratio(row[key]['fastwebsockets'])} fastwebsockets, {fmt_ratio(row[key]['tungstenite'])} tungstenite"
            if key == "ratios_in_place":
                ratios += f" (owned: {fmt_ratio(row['ratios']['fastwebsockets'])}, {fmt_ratio(row['ratios']['tungstenite'])})"
            lines.append(f"| codec {row['group']} {row['case']} | {t['text']} | {ratios} | | | {'yes' if t['met'] else 'no'} |")
    for row in mask:
        t = row.get("target")
        if t:
            lines.append(f"| unmask {size_label(row['size'])} | {t['text']} | {row['share_of_xor'] * 100:.0f}% | | | {'yes' if t['met'] else 'no'} |")
    lines += time_split_section(summary)
    lines += attack_section(attacks)
    if codec:
        lines += ["", "## Codec (criterion, in-memory stream, one core)", "",
                  "Messages per second (bytes per second in brackets); ratios are ws-proto's "
                  "rate over the other's, for owned messages (`receive` + `poll_event`) and, "
                  "after the slash, for receiving in place (`receive_in_place`: each whole "
                  "message borrowed from the read buffer; receive benchmarks only).", "",
                  "| benchmark | size | ws-proto | ws-proto in place | tungstenite | fastwebsockets | vs tungstenite | vs fastwebsockets |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in codec:
            cells = []
            for lib in CODEC_LIBS:
                l = row["libs"].get(lib)
                cells.append("" if not l else f"{fmt_rate(l['messages_per_sec'])} ({fmt_rate(l['bytes_per_sec'])}B/s)")
            vs = []
            for lib in ("tungstenite", "fastwebsockets"):
                cell = fmt_ratio(row["ratios"][lib])
                if row.get("ratios_in_place", {}).get(lib):
                    cell += f" / {fmt_ratio(row['ratios_in_place'][lib])}"
                vs.append(cell)
            lines.append(f"| {row['group']} | {row['case']} | {' | '.join(cells)} | {' | '.join(vs)} |")
    if mask:
        lines += ["", "## Unmasking", "", "Bytes per second.", "",
                  "| size | apply_mask | bytewise | plain XOR (u64) | apply_mask / XOR |",
                  "| --- | --- | --- | --- | --- |"]
        for row in mask:
            share = f"{row['share_of_xor'] * 100:.0f}%" if "share_of_xor" in row else "n/a"
            lines.append(f"| {size_label(row['size'])} | {fmt_rate(row.get('apply_mask'))}B/s | "
                         f"{fmt_rate(row.get('bytewise'))}B/s | {fmt_rate(row.get('xor_u64'))}B/s | {share} |")
    lines += ["", "Chart: [chart.svg](chart.svg); every run's raw figures: "
              "[raw.jsonl](raw.jsonl); the summary as data: [results.json](results.json).", ""]
    return "\n".join(lines)


def fmt_small_us(v):
    return "n/a" if v is None else f"{v:.3f} µs"


def time_split_section(summary):
    rows = [sc for sc in summary if sc["kind"] != "connect"
            and any(s.get("kernel_us") is not None for s in sc["servers"].values())]
    if not rows:
        return []
    lines = ["", "## Where the servers' time goes", "",
             "Per message (echo) or delivery (fanout), medians over rounds: the server's CPU "
             "time in the kernel and in its own code (from the tick counts of "
             "`/proc/<pid>/stat`), the TCP segments sent on the machine in both directions "
             "(`/proc/net/snmp`), and the rate the server would reach if its own code took no "
             "time, the kernel's work per message staying the same (messages per kernel-second). "
             "On loopback, a send runs the receiving end's TCP processing too, in the sender's "
             "context; with equal segments per message every server asks the same of the "
             "kernel, and the last column bounds what any server could reach.", "",
             "| scenario | server | kernel share | kernel per msg | user per msg | segments per msg | at zero user time |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for sc in rows:
        first = True
        for server in SERVERS:
            s = sc["servers"].get(server, {})
            if not s.get("rounds"):
                continue
            name = escape(sc["title"]) if first else ""
            first = False
            segments = "n/a" if s.get("segments_per") is None else f"{s['segments_per']:.3f}"
            lines.append(f"| {name} | {server} | {fmt_share(s.get('kernel_share'))} | "
                         f"{fmt_small_us(s.get('kernel_us'))} | {fmt_small_us(s.get('user_us'))} | "
                         f"{segments} | {fmt_rate(s.get('kernel_bound'))} |")
    return lines


def svg_chart(summary, codec):
    """Bars per scenario, each scaled to the best figure of its scenario, labelled in units."""
    width, label_w, bar_w, row_h, gap = 860, 250, 440, 16, 12
    rows = []
    for sc in summary:
        present = [s for s in SERVERS if sc["servers"].get(s, {}).get("rounds")]
        if present:
            rows.append(("load", sc, present))
    receive = [r for r in codec if r["group"].startswith("receive/")]
    for r in receive:
        rows.append(("codec", r, [l for l in CODEC_LIBS if l in r["libs"]]))
    height = 70 + sum(len(p) * row_h + gap + 14 for _k, _e, p in rows) + 52
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(OURS)} against '
           f'{escape(" and ".join(PEERS))}</text>',
           '<text x="10" y="38" fill="#555">Bars are scaled to the best figure of each row group '
           '(for memory, the shortest bar is best). Medians over rounds.</text>']
    x = 10
    for name in SERVERS:
        out.append(f'<rect x="{x}" y="48" width="10" height="10" fill="{COLORS[name]}"/>')
        out.append(f'<text x="{x + 14}" y="57">{name} (codec: {CODEC_OF[name]})</text>')
        x += 215
    y = 75
    if any("ws-proto in place" in r["libs"] for r in receive):
        out.append(f'<rect x="10" y="{y - 12}" width="10" height="10" fill="{COLORS["ws-proto in place"]}"/>')
        out.append(f'<text x="24" y="{y - 3}">ws-proto in place (codec: messages borrowed from the read buffer)</text>')
        y += 12
    for kind, entry, present in rows:
        if kind == "load":
            title = entry["title"] + (" (lower is better)" if entry["better"] == "lower" else "")
            values = {s: entry["servers"][s]["median"] for s in present}
            unit = entry["unit"]
        else:
            title = f"codec {entry['group']} {entry['case']} (messages/s)"
            values = {l: entry["libs"][l]["messages_per_sec"] for l in present}
            unit = "rate"
        out.append(f'<text x="10" y="{y + 10}" font-weight="bold">{escape(title)}</text>')
        y += 14
        top = max(v for v in values.values() if v) or 1
        for name in present:
            v = values[name] or 0
            w = max(1, bar_w * v / top)
            out.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{escape(name)}</text>')
            out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" fill="{COLORS[name]}"/>')
            text = fmt_bytes(v) if unit == "bytes" else fmt_rate(v) + ("/s" if unit != "bytes" else "")
            out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 11}">{escape(text)}</text>')
            y += row_h
        y += gap
    out.append("</svg>")
    return "\n".join(out)


def main():
    global OURS, PEERS, SERVERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--scenarios", required=True)
    ap.add_argument("--criterion")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ours", default=OURS, help="the server the others are compared with")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated other servers")
    args = ap.parse_args()
    OURS = args.ours
    PEERS = [p for p in args.peers.split(",") if p and p != OURS]
    SERVERS = [OURS] + PEERS
    with open(args.meta) as f:
        meta = json.load(f)
    with open(args.scenarios) as f:
        scenarios = json.load(f)
    runs = load_raw(args.raw) if os.path.exists(args.raw) else []
    meta["runs"] = runs_by_commit(runs, meta)
    ran = [sc for sc in scenarios
           if sc["id"] in {r.get("labels", {}).get("scenario") for r in runs}]
    # Attacks run against our server alone: a table of their own, not the comparison's.
    summary = summarize([sc for sc in ran if sc["kind"] != "attack"], runs)
    attacks = summarize_attacks([sc for sc in ran if sc["kind"] == "attack"], runs)
    codec, mask = codec_summary(read_criterion(args.criterion))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "scenarios": summary, "attacks": attacks, "codec": codec,
                   "unmask": mask}, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown(meta, summary, codec, mask, attacks))
    with open(os.path.join(args.out, "chart.svg"), "w") as f:
        f.write(svg_chart(summary, codec) + "\n")
    # The summary table on the terminal too.
    for sc in summary:
        parts = []
        for server in SERVERS:
            s = sc["servers"].get(server, {})
            if s.get("rounds"):
                parts.append(f"{server} {fmt_value(s['median'], sc['unit'])} "
                             f"[{fmt_value(s['min'], sc['unit'])}-{fmt_value(s['max'], sc['unit'])}] "
                             f"gen {fmt_cpu(s.get('loadgen_cpu'), s.get('loadgen_wait'))}")
            elif s.get("errors"):
                parts.append(f"{server} failed")
        ratios = ", ".join(f"/{p} {fmt_ratio(sc['ratios'][p])}" for p in PEERS)
        print(f"{sc['title']}: " + "; ".join(parts) + f"; ours{ratios}")
    for a in attacks:
        if not a.get("rounds"):
            print(f"{a['title']}: failed")
            continue
        print(f"{a['title']}: {fmt_bytes(a['growth_per_attacker'])} per attacker "
              f"(budget {fmt_bytes(a['budget_per_attacker'])}), bystander p99 "
              f"{fmt_us(a['calm_p99_us'])} -> {fmt_us(a['attack_p99_us'])}, "
              f"{a['bystanders_closed']} bystanders closed")


if __name__ == "__main__":
    main()
