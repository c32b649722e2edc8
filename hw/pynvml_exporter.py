#!/usr/bin/env python3
"""A GPU exporter the usual Python way, for the hardware benchmark (hw/bench-exporter.sh):
pynvml (nvidia-ml-py) + prometheus_client, covering the same per-GPU memory and per-process
metrics as headroom-exporter's `device` and `process` collectors (no GPM, no Xid):

  pynvml_gpu_info, pynvml_gpu_memory_{total,reserved,used}_bytes, pynvml_gpu_temperature_celsius,
  pynvml_gpu_power_watts, pynvml_gpu_sm_clock_hertz, pynvml_gpu_utilization_ratio,
  pynvml_process_memory_used_bytes{pid,process,mps,...}, pynvml_mps_client_memory_limit_bytes

A collector thread refreshes a snapshot every --interval seconds (device count, handles,
memory v2, temperature, power, SM clock, utilization, the compute and MPS process lists;
process names and /proc/PID/environ limits cached per pid); each scrape renders the latest
snapshot through a custom prometheus_client collector. The HTTP server is single-threaded,
so all work runs on two long-lived threads (which the benchmark's per-thread CPU accounting
sees exactly).

    python3 hw/pynvml_exporter.py --port 9412 --interval 1
"""
import argparse
import os
import re
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pynvml
from prometheus_client import make_wsgi_app
from prometheus_client.core import REGISTRY, GaugeMetricFamily, InfoMetricFamily

LIMIT_VAR = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)i?B?\s*", text, re.I)
    return int(float(m.group(1)) * UNITS[m.group(2).upper()]) if m else None


def mps_limit(pid, ordinal):
    """The client's pinned memory limit for its device `ordinal` (None if unknown)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(LIMIT_VAR.encode() + b"="):
            value = entry.split(b"=", 1)[1].decode(errors="replace")
            if "=" not in value:
                return parse_size(value)
            for part in value.split(","):
                dev, _, size = part.partition("=")
                if dev.strip() == str(ordinal):
                    return parse_size(size)
    return None


def text(v):
    return v.decode() if isinstance(v, bytes) else v


class Sampler:
    def __init__(self):
        self.identity = {}  # index -> (uuid, name)
        self.names = {}  # pid -> process name
        self.limits = {}  # pid -> limit
        self.snapshot = None
        self.driver = text(pynvml.nvmlSystemGetDriverVersion())

    def value(self, f, *args):
        try:
            return f(*args)
        except pynvml.NVMLError:
            return None

    def collect(self):
        gpus = []
        live = set()
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            if i not in self.identity:
                self.identity[i] = (text(pynvml.nvmlDeviceGetUUID(h)), text(pynvml.nvmlDeviceGetName(h)))
            uuid, name = self.identity[i]
            mem = self.value(pynvml.nvmlDeviceGetMemoryInfo, h, pynvml.nvmlMemory_v2)
            util = self.value(pynvml.nvmlDeviceGetUtilizationRates, h)
            procs = {}
            for mps, f in ((False, pynvml.nvmlDeviceGetComputeRunningProcesses),
                           (True, pynvml.nvmlDeviceGetMPSComputeRunningProcesses)):
                for p in self.value(f, h) or []:
                    prev = procs.get(p.pid)
                    procs[p.pid] = (p.usedGpuMemory, mps or (prev is not None and prev[1]))
            plist = []
            for pid, (used, mps) in sorted(procs.items()):
                live.add(pid)
                if pid not in self.names:
                    self.names[pid] = text(self.value(pynvml.nvmlSystemGetProcessName, pid) or "")
                    self.limits[pid] = mps_limit(pid, i)
                plist.append((pid, self.names[pid], used, mps, self.limits[pid] if mps else None))
            power = self.value(pynvml.nvmlDeviceGetPowerUsage, h)
            clock = self.value(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM)
            gpus.append({
                "index": str(i), "uuid": uuid, "name": name,
                "memory": mem,
                "temperature": self.value(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU),
                "power": power / 1000.0 if power is not None else None,
                "clock": clock * 1e6 if clock is not None else None,
                "util": util.gpu / 100.0 if util is not None else None,
                "procs": plist,
            })
        for pid in list(self.names):
            if pid not in live:
                del self.names[pid]
                del self.limits[pid]
        self.snapshot = gpus

    def run(self, interval):
        while True:
            start = time.monotonic()
            self.collect()
            time.sleep(max(0.0, interval - (time.monotonic() - start)))


class SnapshotCollector:
    def __init__(self, sampler):
        self.sampler = sampler

    def collect(self):
        snap = self.sampler.snapshot or []
        gl = ["gpu", "gpu_uuid"]
        info = InfoMetricFamily("pynvml_gpu", "GPU identity.", labels=gl + ["model", "driver_version"])
        fams = {k: GaugeMetricFamily(f"pynvml_gpu_{k}", h, labels=gl) for k, h in (
            ("memory_total_bytes", "Total framebuffer memory."),
            ("memory_reserved_bytes", "Memory the driver keeps."),
            ("memory_used_bytes", "Framebuffer memory in use."),
            ("temperature_celsius", "GPU temperature."),
            ("power_watts", "Power draw."),
            ("sm_clock_hertz", "SM clock."),
            ("utilization_ratio", "NVML utilization."),
        )}
        pl = gl + ["pid", "process", "mps"]
        pmem = GaugeMetricFamily("pynvml_process_memory_used_bytes", "GPU memory used by the process.", labels=pl)
        plim = GaugeMetricFamily("pynvml_mps_client_memory_limit_bytes", "MPS client memory limit.", labels=pl)
        for g in snap:
            l = [g["index"], g["uuid"]]
            info.add_metric(l + [g["name"], self.sampler.driver], {})
            m = g["memory"]
            for k, v in (("memory_total_bytes", m and m.total), ("memory_reserved_bytes", m and m.reserved),
                         ("memory_used_bytes", m and m.used), ("temperature_celsius", g["temperature"]),
                         ("power_watts", g["power"]), ("sm_clock_hertz", g["clock"]),
                         ("utilization_ratio", g["util"])):
                if v is not None:
                    fams[k].add_metric(l, v)
            for pid, name, used, mps, limit in g["procs"]:
                pls = l + [str(pid), name, "true" if mps else "false"]
                if used is not None:
                    pmem.add_metric(pls, used)
                if limit is not None:
                    plim.add_metric(pls, limit)
        yield info
        yield from fams.values()
        yield pmem
        yield plim


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9412)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    pynvml.nvmlInit()
    sampler = Sampler()
    sampler.collect()
    REGISTRY.register(SnapshotCollector(sampler))
    threading.Thread(target=sampler.run, args=(args.interval,), daemon=True).start()
    server = make_server("127.0.0.1", args.port, make_wsgi_app(), WSGIServer, handler_class=Quiet)
    print(f"pynvml exporter on http://127.0.0.1:{args.port}/metrics (pid {os.getpid()})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
