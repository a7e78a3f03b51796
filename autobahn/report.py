#!/usr/bin/env python3
"""Summarise and judge Autobahn|Testsuite reports (python3, stdlib only).

Reads the index.json wstest writes into each report directory
(agent -> case id -> {behavior, behaviorClose, duration, remoteCloseCode,
reportfile}), prints a table of statuses per role and the failing cases, and
exits 1 unless every expected case is present and both its behavior and
behaviorClose are OK or INFORMATIONAL. NON-STRICT fails.

No case is excused: UNIMPLEMENTED fails like any other status, the
permessage-deflate cases 12.* and 13.* included.

The expected case list (--expected, a JSON list made by list_cases.py from
the spec) catches wstest stopping early: fuzzingclient gives up quietly and
writes a short report when a connection is refused.

    report.py --expected cases.json --server reports/server --server-agent NAME \
              --client reports/client --client-agent NAME [--results RESULTS.md]
"""
import argparse
import collections
import datetime
import json
import os
import subprocess
import sys

PASSING = ("OK", "INFORMATIONAL")
# Printed in this order; any other status wstest reports is added after them.
STATUSES = ("OK", "INFORMATIONAL", "NON-STRICT", "UNIMPLEMENTED", "FAILED",
            "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT")
MAX_LISTED = 60


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


class Role:
    """One direction's report: server (wstest fuzzingclient) or client."""

    def __init__(self, name, directory, agent, expected):
        self.name = name
        self.directory = directory
        self.agent = agent
        self.problems = []  # whole-report problems (missing file, agent, cases)
        self.notes = []
        self.failing = []  # (case id, behavior, behaviorClose, reportfile)
        self.behavior = collections.Counter()
        self.close = collections.Counter()
        self.missing = []
        self.cases = {}
        self._load(expected)

    def _load(self, expected):
        index = os.path.join(self.directory, "index.json")
        try:
            with open(index, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self.problems.append("no readable %s (%s)" % (index, e))
            self.missing = list(expected)
            return
        if self.agent not in data:
            self.problems.append("agent %r not in %s (found: %s)" % (
                self.agent, index, ", ".join(sorted(data)) or "none"))
            self.missing = list(expected)
            return
        others = sorted(set(data) - {self.agent})
        if others:
            self.notes.append("other agents in %s, ignored: %s" % (index, ", ".join(others)))
        self.cases = data[self.agent]
        for case_id in sorted(self.cases, key=case_key):
            r = self.cases[case_id]
            b, bc = r.get("behavior", "?"), r.get("behaviorClose", "?")
            self.behavior[b] += 1
            self.close[bc] += 1
            if b in PASSING and bc in PASSING:
                continue
            self.failing.append((case_id, b, bc, r.get("reportfile", "")))
        self.missing = [c for c in expected if c not in self.cases]
        if self.missing:
            self.problems.append("%d of %d expected cases missing from the report "
                                 "(wstest stopped early?): %s" % (
                                     len(self.missing), len(expected), abbreviate(self.missing)))

    @property
    def ok(self):
        return not self.problems and not self.failing

    def passed(self, expected):
        """Expected cases present in the report and judged passing."""
        bad = set(self.missing) | {c for c, _, _, _ in self.failing}
        return sum(1 for c in expected if c not in bad)

    def statuses(self):
        seen = set(self.behavior) | set(self.close)
        return list(STATUSES) + sorted(seen - set(STATUSES))


def html_report(directory, reportfile):
    """The case's HTML page (index.json names its JSON twin), if present."""
    if not reportfile:
        return ""
    html = os.path.join(directory, os.path.splitext(reportfile)[0] + ".html")
    return html if os.path.exists(html) else os.path.join(directory, reportfile)


def abbreviate(items, limit=20):
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + ", ... (%d more)" % (len(items) - limit)


def print_role(role, expected):
    verdict = "PASS" if role.ok else "FAIL"
    print("%s: %s, agent %s, %d/%d cases" % (
        role.name, verdict, role.agent, len(role.cases), len(expected)))
    for problem in role.problems:
        print("  ! " + problem)
    for note in role.notes:
        print("  - " + note)
    if role.cases:
        print("  %-18s %9s %9s" % ("status", "behavior", "close"))
        for s in role.statuses():
            print("  %-18s %9d %9d" % (s, role.behavior[s], role.close[s]))
    if role.failing:
        print("  failing cases (%d):" % len(role.failing))
        for case_id, b, bc, rf in role.failing[:MAX_LISTED]:
            print("    %-9s behavior=%-14s close=%-14s %s" % (
                case_id, b, bc, html_report(role.directory, rf)))
        if len(role.failing) > MAX_LISTED:
            print("    ... and %d more" % (len(role.failing) - MAX_LISTED))
    print()


def git_commit(repo_dir):
    """Short HEAD, with -dirty when the tree has changes besides RESULTS.md."""
    def git(*args):
        return subprocess.run(("git", "-C", repo_dir) + args, capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "none (no commit yet)"
    try:
        dirty = git("status", "--porcelain", "--", ".", ":(exclude)autobahn/RESULTS.md")
    except (OSError, subprocess.CalledProcessError):
        dirty = ""
    return head + ("-dirty" if dirty else "")


HEADER = [
    "# Autobahn|Testsuite results",
    "",
    "Written by `autobahn/run.sh` (see autobahn/README.md), one section per pair of testees,",
    "each rewritten by its own full run (both roles, every case); the HTML reports stay in",
    "`autobahn/reports/`, which is not committed.",
]


def section_lines(roles, expected, wstest_version):
    repo_dir = os.path.dirname(os.path.abspath(__file__))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## " + ", ".join("%s: %s" % (r.name, r.agent) for r in roles),
        "",
        "- commit: `%s`" % git_commit(repo_dir),
        "- date: %s" % now,
        "- wstest: %s" % wstest_version,
        "- cases: %d per role" % len(expected),
        "- passing: behavior and behaviorClose both OK or INFORMATIONAL, every case",
        "",
        "| role | agent | cases | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for r in roles:
        lines.append("| %s | %s | %d/%d | %s |" % (
            r.name, r.agent, len(r.cases), len(expected), "PASS" if r.ok else "FAIL"))
    lines += ["", "Cases per status (behavior / behaviorClose):", "",
              "| status | " + " | ".join(r.name for r in roles) + " |",
              "| --- |" + " --- |" * len(roles)]
    statuses = []
    for r in roles:
        statuses += [s for s in r.statuses() if s not in statuses]
    for s in statuses:
        lines.append("| %s | " % s + " | ".join(
            "%d / %d" % (r.behavior[s], r.close[s]) for r in roles) + " |")
    for r in roles:
        if r.problems or r.failing:
            lines += ["", "Failing, %s:" % r.name, ""]
            lines += ["- " + p for p in r.problems]
            lines += ["- %s: behavior %s, behaviorClose %s" % (c, b, bc)
                      for c, b, bc, _ in r.failing[:MAX_LISTED]]
            if len(r.failing) > MAX_LISTED:
                lines.append("- ... and %d more" % (len(r.failing) - MAX_LISTED))
    return lines


def read_sections(path):
    """The sections of an existing results file: key -> lines, in file order."""
    sections = collections.OrderedDict()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().splitlines()
    except OSError:
        return sections
    key = None
    for line in text:
        if line.startswith("<!-- section: ") and line.endswith(" -->"):
            key = line[len("<!-- section: "):-len(" -->")]
            sections[key] = []
        elif line.startswith("<!-- end: "):
            key = None
        elif key is not None:
            sections[key].append(line)
    return sections


def write_results(path, roles, expected, wstest_version):
    """Rewrites this pair of testees' section of PATH (keyed by the agents), keeping the
    others."""
    key = " / ".join(r.agent for r in roles)
    sections = read_sections(path)
    sections[key] = section_lines(roles, expected, wstest_version)
    lines = list(HEADER)
    for k, body in sections.items():
        lines += ["", "<!-- section: %s -->" % k] + body + ["<!-- end: %s -->" % k]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--expected", required=True,
                    help="JSON list of the case ids every report must hold")
    ap.add_argument("--server", metavar="DIR", help="fuzzingclient report dir (our server)")
    ap.add_argument("--server-agent", default="ws-mio-server")
    ap.add_argument("--client", metavar="DIR", help="fuzzingserver report dir (our client)")
    ap.add_argument("--client-agent", default="ws-proto-client")
    ap.add_argument("--results", metavar="FILE", help="also write this Markdown summary")
    ap.add_argument("--wstest-version", default="unknown")
    args = ap.parse_args()
    if not args.server and not args.client:
        ap.error("give --server and/or --client")

    with open(args.expected, encoding="utf-8") as f:
        expected = json.load(f)
    if not expected:
        sys.exit("report.py: the expected case list %s is empty" % args.expected)

    roles = []
    if args.server:
        roles.append(Role("server", args.server, args.server_agent, expected))
    if args.client:
        roles.append(Role("client", args.client, args.client_agent, expected))
    for r in roles:
        print_role(r, expected)
    if args.results:
        write_results(args.results, roles, expected, args.wstest_version)
        print("wrote %s" % args.results)
    passed = all(r.ok for r in roles)
    print("autobahn: %s" % ("PASS" if passed else "FAIL"))
    # Closing line in the plain "N passed, N failed" form CI logs are read by:
    # one count per expected case and role.
    n_passed = sum(r.passed(expected) for r in roles)
    print("autobahn: %d passed, %d failed" % (n_passed, len(expected) * len(roles) - n_passed))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
