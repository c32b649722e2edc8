#!/usr/bin/env python3
"""Offline schema validation of Kubernetes manifests.

Built-in kinds are validated with kubernetes-validate (PyPI; the Kubernetes OpenAPI
schemas it bundles), strictly (unknown fields are errors), against every version given
with -k. prometheus-operator kinds (ServiceMonitor, PodMonitor, PrometheusRule), which
kubernetes-validate has no schema for, are validated against the openAPIV3Schema of their
CustomResourceDefinitions in tests/ops/crds/ (prometheus-operator v0.93.0) with
jsonschema, made strict the way the API server's strict field validation is: an object
schema that lists properties and does not preserve unknown fields rejects other keys.
Any other kind is an error: nothing is skipped silently.

Usage: validate_manifests.py -k 1.30.0 -k 1.33.0 FILE... ('-' reads stdin, e.g. the
output of `kubectl kustomize`). Exits 1 listing every problem.
"""

import argparse
import copy
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

CRD_DIR = pathlib.Path(__file__).resolve().parent / "crds"


def strict(schema):
    """A copy of a structural schema in which objects reject unknown properties."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    return s


def load_crds():
    schemas = {}
    for f in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            schema = strict(v["schema"]["openAPIV3Schema"])
            # metadata is validated by the API server's ObjectMeta, not the CRD schema.
            schema.setdefault("properties", {})["metadata"] = {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object",
                                    "additionalProperties": {"type": "string"}},
                },
                "additionalProperties": False,
            }
            schema["required"] = sorted(set(schema.get("required", [])) | {"spec"})
            schemas[(f"{group}/{v['name']}", kind)] = schema
    return schemas


def documents(name):
    text = sys.stdin.read() if name == "-" else pathlib.Path(name).read_text()
    for i, doc in enumerate(yaml.safe_load_all(text)):
        if doc is not None:
            yield f"{name}#{i}", doc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", "--kubernetes-version", action="append", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    crds = load_crds()
    problems, counts = [], {"builtin": 0, "crd": 0}
    for name in args.files:
        for where, doc in documents(name):
            api, kind = doc.get("apiVersion"), doc.get("kind")
            what = f"{where} {kind}/{(doc.get('metadata') or {}).get('name')}"
            if (api, kind) in crds:
                counts["crd"] += 1
                v = jsonschema.Draft7Validator(crds[(api, kind)])
                for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                    path = "/".join(str(p) for p in e.absolute_path)
                    problems.append(f"{what}: {path}: {e.message}")
                continue
            if api and api.startswith("monitoring.coreos.com/"):
                problems.append(f"{what}: no CRD schema for {api} {kind} in {CRD_DIR}")
                continue
            counts["builtin"] += 1
            for version in args.kubernetes_version:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.SchemaNotFoundError as e:
                    problems.append(f"{what} (Kubernetes {version}): no schema: {e}")
                except kubernetes_validate.ValidationError as e:
                    path = "/".join(str(p) for p in e.path)
                    problems.append(f"{what} (Kubernetes {version}): {path}: {e.message}")
    if problems:
        print("manifest validation failed:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    if not counts["builtin"] and not counts["crd"]:
        print("manifest validation: no documents", file=sys.stderr)
        return 1
    print(f"manifests valid: {counts['builtin']} built-in objects (Kubernetes "
          f"{', '.join(args.kubernetes_version)}, strict), {counts['crd']} prometheus-operator "
          "objects (CRD schemas, strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
