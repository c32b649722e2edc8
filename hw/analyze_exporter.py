#!/usr/bin/env python3
"""Checks a hardware verification run (see verify-exporter.sh) and prints the figures:
per-client memory vs nvidia-smi (within 1%), exported MPS limits, GPM graphics activity
idle (< 0.05) and under matmul load (> 0.5). Parses the exposition with prometheus_client's
OpenMetrics parser when it is installed, else with a small line parser."""
import csv
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(path):
    res = []
    for line in path.read_text().splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            res.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return res


def pick(ss, name, **labels):
    return [s for s in ss if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


results = {}
ok = True
idle = samples(out / "idle.prom")
load = samples(out / "load.prom")
gr_idle = pick(idle, "headroom_gpu_graphics_active_ratio")
gr_load = pick(load, "headroom_gpu_graphics_active_ratio")
results["graphics_active_idle"] = gr_idle[0][2] if gr_idle else None
results["graphics_active_load"] = gr_load[0][2] if gr_load else None
ok &= results["graphics_active_idle"] is not None and results["graphics_active_idle"] < 0.05
ok &= results["graphics_active_load"] is not None and results["graphics_active_load"] > 0.5

smi = {}
for row in csv.reader((out / "smi_apps.csv").read_text().splitlines()):
    if len(row) >= 3:
        smi[row[0].strip()] = float(row[2]) * 2**20
clients = []
for name, labels, value in pick(load, "headroom_process_memory_used_bytes"):
    pid = labels["pid"]
    limit = pick(load, "headroom_mps_client_memory_limit_bytes", pid=pid)
    ref = smi.get(pid)
    err = abs(value - ref) / ref if ref else None
    clients.append({"pid": pid, "process": labels.get("process"), "mps": labels.get("mps"),
                    "workload": labels.get("workload"), "exported_bytes": value,
                    "nvidia_smi_bytes": ref, "rel_error": err,
                    "limit_bytes": limit[0][2] if limit else None})
results["clients"] = clients
wl = [c for c in clients if c["workload"] in ("client-a", "client-b")]
ok &= len(wl) == 2 and all(c["rel_error"] is not None and c["rel_error"] <= 0.01 for c in wl)
lim = {c["workload"]: c["limit_bytes"] for c in wl}
ok &= lim.get("client-a") == 16 * 2**30 and lim.get("client-b") == 24 * 2**30
c_err = (out / "client_c.err").read_text() if (out / "client_c.err").exists() else ""
results["client_c_oom_message"] = "out of memory" in c_err.lower()
ok &= results["client_c_oom_message"]
results["openmetrics_parse"] = None
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    list(text_string_to_metric_families((out / "load.prom").read_text()))
    results["openmetrics_parse"] = "ok"
except ImportError:
    pass
except Exception as e:  # noqa: BLE001
    results["openmetrics_parse"] = f"failed: {e}"
    ok = False
results["pass"] = bool(ok)
(out / "summary.json").write_text(json.dumps(results, indent=1))
print(json.dumps(results, indent=1))
