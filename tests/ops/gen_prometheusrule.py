#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml from alerts/*.rules.yml.

The PrometheusRule's spec.groups are the rule files' groups, copied as text (comments and
formatting kept). `--check` regenerates in memory and exits 1 if the file differs, or if
its parsed spec.groups differ from the rule files' groups.

Usage: tests/ops/gen_prometheusrule.py [--check]
"""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"

HEADER = """\
# Generated from {sources} by tests/ops/gen_prometheusrule.py: do not edit;
# edit the rule files and rerun the script (tests/ops/check_alerts.sh fails when they differ).
# prometheus-operator picks this up when the labels below match your Prometheus' ruleSelector
# (kube-prometheus-stack: release: <its release name>); see docs/deploy.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: headroom
  labels:
    app.kubernetes.io/name: headroom
    app.kubernetes.io/part-of: headroom
    app.kubernetes.io/component: alerts
spec:
  groups:
"""


def rule_files():
    return sorted((ROOT / "alerts").glob("*.rules.yml"))


def groups_text(path):
    """The lines after the top-level `groups:` key."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.rstrip() == "groups:":
            return lines[i + 1:]
    raise SystemExit(f"{path}: no top-level 'groups:' line")


def render():
    files = rule_files()
    out = HEADER.format(sources=", ".join(str(f.relative_to(ROOT)) for f in files))
    for f in files:
        for line in groups_text(f):
            out += ("  " + line).rstrip() + "\n"
    return out


def main(argv):
    text = render()
    if "--check" not in argv[1:]:
        OUT.write_text(text)
        return 0
    problems = []
    if not OUT.is_file() or OUT.read_text() != text:
        problems.append(f"{OUT.relative_to(ROOT)} is out of date: run tests/ops/gen_prometheusrule.py")
    if OUT.is_file():
        deployed = yaml.safe_load(OUT.read_text())["spec"]["groups"]
        source = [g for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"]]
        if deployed != source:
            problems.append("PrometheusRule spec.groups differ from alerts/*.rules.yml")
    if problems:
        print(*problems, sep="\n", file=sys.stderr)
        return 1
    print("deploy/kubernetes/prometheusrule.yaml matches alerts/*.rules.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
