#!/usr/bin/env python3
"""Checks alerts/ beyond what promtool does.

- Every alert has labels.severity (critical, warning or info) and the annotations summary,
  description and runbook_url; runbook_url is docs/alerts.md#<alert name in lower case> and
  docs/alerts.md has that heading.
- Every alert has a firing case (non-empty exp_alerts) and a non-firing case (empty
  exp_alerts) in the same test group of alerts/tests/*.test.yml, i.e. on the same input
  series, so the non-firing case is not vacuous.
- Every alertname a test names exists (promtool accepts an unknown name with no expected
  alerts, which would test nothing).
- Every rule file is loaded by some test file.

Usage: tests/ops/check_alert_tests.py [REPO_ROOT]. Exits 1 listing every problem.
"""

import pathlib
import re
import sys

import yaml

SEVERITIES = {"critical", "warning", "info"}


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def main(root):
    problems = []
    rule_files = sorted((root / "alerts").glob("*.rules.yml"))
    test_files = sorted((root / "alerts" / "tests").glob("*.test.yml"))
    if not rule_files:
        problems.append("no alerts/*.rules.yml")
    if not test_files:
        problems.append("no alerts/tests/*.test.yml")

    docs = root / "docs" / "alerts.md"
    anchors = set()
    if docs.is_file():
        for line in docs.read_text().splitlines():
            m = re.match(r"^#{1,6}\s+(.*)$", line)
            if m:
                anchors.add(slug(m.group(1)))
    else:
        problems.append("docs/alerts.md missing")

    alerts = {}
    for f in rule_files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                where = f"{f.relative_to(root)}: {name}"
                if name in alerts:
                    problems.append(f"{where}: defined twice")
                alerts[name] = rule
                sev = (rule.get("labels") or {}).get("severity")
                if sev not in SEVERITIES:
                    problems.append(f"{where}: labels.severity {sev!r} not one of {sorted(SEVERITIES)}")
                ann = rule.get("annotations") or {}
                for key in ("summary", "description", "runbook_url"):
                    if not ann.get(key):
                        problems.append(f"{where}: annotations.{key} missing")
                want = f"docs/alerts.md#{name.lower()}"
                if ann.get("runbook_url") != want:
                    problems.append(f"{where}: runbook_url {ann.get('runbook_url')!r}, want {want!r}")
                if name.lower() not in anchors:
                    problems.append(f"{where}: docs/alerts.md has no heading for #{name.lower()}")

    # alert name -> set of (file, group index) with a firing / a non-firing case
    firing, quiet = {}, {}
    loaded = set()
    for f in test_files:
        doc = yaml.safe_load(f.read_text())
        for rf in doc.get("rule_files", []):
            loaded.add((f.parent / rf).resolve())
        for i, test in enumerate(doc.get("tests", [])):
            for case in test.get("alert_rule_test", []) or []:
                name = case["alertname"]
                if name not in alerts:
                    problems.append(f"{f.relative_to(root)} test {i}: unknown alert {name}")
                    continue
                bucket = firing if case.get("exp_alerts") else quiet
                bucket.setdefault(name, set()).add((f.name, i))
    for f in rule_files:
        if f.resolve() not in loaded:
            problems.append(f"{f.relative_to(root)}: no test file loads it")
    for name in sorted(alerts):
        if not firing.get(name):
            problems.append(f"{name}: no firing test case")
        if not quiet.get(name):
            problems.append(f"{name}: no non-firing test case")
        if firing.get(name) and quiet.get(name) and not (firing[name] & quiet[name]):
            problems.append(f"{name}: firing and non-firing cases are in different test groups "
                            "(give the non-firing case the same input series)")

    if problems:
        print("alert checks failed:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"alert checks: {len(alerts)} alerts, each with a firing and a non-firing case, "
          "severity, annotations and a runbook section")
    return 0


if __name__ == "__main__":
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parents[2])
    sys.exit(main(root))
