#!/usr/bin/env python3
"""Static checks of dashboards/*.json (the live query check is exporter/tests/dashboards.rs).

- The JSON files are what dashboards/generate.py writes (no hand edits drift).
- Grafana's classic model, schemaVersion 42; unique uids; a `datasource` variable of type
  datasource (Prometheus) that every panel and target uses as `${datasource}`.
- Template variables: `node` everywhere, `gpu` on the GPU, MIG and MPS dashboards, `mig` on
  the MIG dashboard, `device` on the admission dashboard; each a multi-value
  label_values() query with All.
- Every non-table panel has a unit; every panel has a description; every alert a panel
  description names exists in alerts/*.rules.yml.
- Read back through grafana-foundation-sdk (PyPI): no panel field is unknown to its
  dashboard model (a typo'd key would be dropped).

Usage: tests/ops/check_dashboards.py. Exits 1 listing every problem.
"""

import json
import pathlib
import re
import subprocess
import sys

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as sdk

ROOT = pathlib.Path(__file__).resolve().parents[2]
DS = {"type": "prometheus", "uid": "${datasource}"}
REQUIRED_VARS = {
    "gpu-overview.json": ["node", "gpu"],
    "mig-instances.json": ["node", "gpu", "mig"],
    "mps-clients.json": ["node", "gpu"],
    "admission.json": ["node", "device"],
}
# Dashboard-level fields of current Grafana that the SDK's (older) model does not know.
SDK_UNKNOWN_OK = {"/preload", "/annotations/list[0]/builtIn"}


def dropped(a, b, path=""):
    """Paths present in `a` but missing from `b`."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(f"{path}/{k}")
            else:
                out += dropped(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            out += dropped(x, y, f"{path}[{i}]")
    return out


def panels_of(panels):
    for p in panels:
        yield p
        yield from panels_of(p.get("panels", []))


def main():
    problems = []
    gen = subprocess.run([sys.executable, str(ROOT / "dashboards" / "generate.py"), "--check"],
                         capture_output=True, text=True)
    if gen.returncode:
        problems.append(gen.stderr.strip())

    alerts = set()
    for f in (ROOT / "alerts").glob("*.rules.yml"):
        for g in yaml.safe_load(f.read_text())["groups"]:
            alerts |= {r["alert"] for r in g["rules"] if "alert" in r}

    files = sorted((ROOT / "dashboards").glob("*.json"))
    names = {f.name for f in files}
    for want in REQUIRED_VARS:
        if want not in names:
            problems.append(f"dashboards/{want} missing")
    uids = {}
    n_panels = n_targets = 0
    for f in files:
        where = f"dashboards/{f.name}"
        d = json.loads(f.read_text())
        if d.get("schemaVersion") != 42:
            problems.append(f"{where}: schemaVersion {d.get('schemaVersion')}, want 42")
        uid = d.get("uid")
        if not uid or uid in uids:
            problems.append(f"{where}: uid {uid!r} missing or also in {uids.get(uid)}")
        uids[uid] = f.name
        if "headroom" not in d.get("tags", []):
            problems.append(f"{where}: no 'headroom' tag (the dashboards link by tag)")

        variables = d.get("templating", {}).get("list", [])
        if not variables or variables[0].get("type") != "datasource" \
                or variables[0].get("name") != "datasource" \
                or variables[0].get("query") != "prometheus":
            problems.append(f"{where}: first variable must be the Prometheus `datasource` variable")
        by_name = {v.get("name"): v for v in variables}
        for name in REQUIRED_VARS.get(f.name, ["node"]):
            v = by_name.get(name)
            if v is None:
                problems.append(f"{where}: variable ${name} missing")
                continue
            q = v.get("query")
            if v.get("type") != "query" or v.get("datasource") != DS \
                    or not isinstance(q, str) or not q.startswith("label_values(") \
                    or not v.get("multi") or not v.get("includeAll") or not v.get("allValue"):
                problems.append(f"{where}: ${name} must be a multi-value label_values() query "
                                "on ${datasource} with All and an All value")

        for p in panels_of(d.get("panels", [])):
            if p.get("type") == "row":
                continue
            n_panels += 1
            pw = f"{where} panel {p.get('title')!r}"
            if p.get("datasource") != DS:
                problems.append(f"{pw}: datasource {p.get('datasource')}, want {DS}")
            if not p.get("description"):
                problems.append(f"{pw}: no description")
            if p.get("type") != "table" and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                problems.append(f"{pw}: no unit")
            steps = p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
            if not steps or steps[0].get("value") is not None:
                problems.append(f"{pw}: thresholds must start with a base step (value null)")
            for a in set(re.findall(r"\bHeadroom[A-Z][A-Za-z]+\b", p.get("description", ""))):
                if a not in alerts:
                    problems.append(f"{pw}: names alert {a}, which alerts/ does not define")
            refs = [t.get("refId") for t in p.get("targets", [])]
            if not refs or len(set(refs)) != len(refs):
                problems.append(f"{pw}: targets missing or refIds not unique: {refs}")
            for t in p.get("targets", []):
                n_targets += 1
                if t.get("datasource") != DS or not t.get("expr"):
                    problems.append(f"{pw} target {t.get('refId')}: needs expr and {DS}")

        back = json.loads(json.dumps(sdk.Dashboard.from_json(d), cls=JSONEncoder))
        for path in dropped(d, back):
            if path in SDK_UNKNOWN_OK or re.fullmatch(r"/templating/list\[\d+\]/definition", path):
                continue
            problems.append(f"{where}: {path} is not in Grafana's dashboard model "
                            "(grafana-foundation-sdk read-back dropped it)")

    if problems:
        print("dashboard checks failed:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"dashboard checks: {len(files)} dashboards, {n_panels} panels, {n_targets} targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
