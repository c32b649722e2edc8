#!/usr/bin/env python3
"""An exporter that shells out to nvidia-smi on every scrape, as many small GPU exporters
do, for the hardware benchmark (hw/bench-exporter.sh). Each GET /metrics runs

  nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.reserved,memory.used,
             temperature.gpu,power.draw,clocks.sm,utilization.gpu --format=csv,noheader,nounits
  nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader,nounits

and turns the CSV into Prometheus text (the same per-GPU memory and per-process memory
metrics as headroom-exporter's device and process collectors, with nvidia-smi's MiB
resolution). Single-threaded; the nvidia-smi children are waited for, so their CPU shows in
the exporter's cutime/cstime.

    python3 hw/smi_exporter.py --port 9413
"""
import argparse
import csv
import subprocess
from http.server import BaseHTTPRequestHandler, HTTPServer

GPU_FIELDS = ["index", "uuid", "name", "memory.total", "memory.reserved", "memory.used",
              "temperature.gpu", "power.draw", "clocks.sm", "utilization.gpu"]
APP_FIELDS = ["gpu_uuid", "pid", "process_name", "used_memory"]
MIB = 1 << 20


def query(args):
    out = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=False).stdout
    return [[c.strip() for c in row] for row in csv.reader(out.splitlines()) if row]


def num(v):
    try:
        return float(v)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def render():
    gpus = query(["--query-gpu=" + ",".join(GPU_FIELDS)])
    apps = query(["--query-compute-apps=" + ",".join(APP_FIELDS)])
    lines = []
    index_of = {}
    series = {k: [] for k in ("memory_total_bytes", "memory_reserved_bytes", "memory_used_bytes",
                              "temperature_celsius", "power_watts", "sm_clock_hertz",
                              "utilization_ratio")}
    for row in gpus:
        if len(row) < len(GPU_FIELDS):
            continue
        idx, uuid, name = row[0], row[1], row[2]
        index_of[uuid] = idx
        l = f'gpu="{idx}",gpu_uuid="{uuid}"'
        lines.append(f'smi_gpu_info{{{l},model="{name}"}} 1')
        for key, raw, scale in (("memory_total_bytes", row[3], MIB), ("memory_reserved_bytes", row[4], MIB),
                                ("memory_used_bytes", row[5], MIB), ("temperature_celsius", row[6], 1),
                                ("power_watts", row[7], 1), ("sm_clock_hertz", row[8], 1e6),
                                ("utilization_ratio", row[9], 0.01)):
            v = num(raw)
            if v is not None:
                series[key].append(f"smi_gpu_{key}{{{l}}} {v * scale}")
    for key, s in series.items():
        lines.append(f"# TYPE smi_gpu_{key} gauge")
        lines.extend(s)
    lines.append("# TYPE smi_process_memory_used_bytes gauge")
    for row in apps:
        if len(row) < len(APP_FIELDS):
            continue
        uuid, pid, pname, used = row
        v = num(used)
        if v is not None:
            lines.append(f'smi_process_memory_used_bytes{{gpu="{index_of.get(uuid, "")}",gpu_uuid="{uuid}",'
                         f'pid="{pid}",process="{pname}"}} {v * MIB}')
    return ("\n".join(lines) + "\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = render()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9413)
    args = ap.parse_args()
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
