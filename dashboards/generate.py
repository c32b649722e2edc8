#!/usr/bin/env python3
"""Writes Headroom's Grafana dashboards (dashboards/*.json) from the definitions below.

The JSON files are what Grafana imports (classic dashboard model, schemaVersion 42, the
Prometheus data source chosen through the `datasource` variable). Edit this file, not the
JSON, then run `python3 dashboards/generate.py`; `--check` exits 1 when a JSON file differs
from what this script writes (tests/ops/check_dashboards.sh runs it).

Every panel query is run against a real Prometheus scraping the exporter and the sidecar on
the fake GPU by exporter/tests/dashboards.rs: each must return data.

Thresholds follow alerts/headroom.rules.yml: free memory below 10% (HeadroomLowHeadroom)
and 3% (HeadroomNoHeadroom), an MPS client above 95% of its limit
(HeadroomMpsClientNearLimit), a MIG instance below 1% active (HeadroomMigInstanceIdle), a
predicted peak above capacity (HeadroomOomRisk), a snapshot older than 60 s
(HeadroomSnapshotStale), a collector at 0 (HeadroomCollectorFailing).
"""

import json
import pathlib
import sys

SCHEMA_VERSION = 42
DS = {"type": "prometheus", "uid": "${datasource}"}
OUT = pathlib.Path(__file__).resolve().parent

# Threshold step lists (Grafana: the first step has value null, the base colour).
USED_STEPS = [("green", None), ("orange", 0.90), ("red", 0.97)]
FREE_STEPS = [("red", None), ("orange", 0.03), ("green", 0.10)]
LIMIT_STEPS = [("green", None), ("orange", 0.95), ("red", 1.0)]
IDLE_STEPS = [("blue", None), ("green", 0.01)]
PEAK_STEPS = [("green", None), ("orange", 0.90), ("red", 1.0)]
AGE_STEPS = [("green", None), ("orange", 60)]
SUCCESS_STEPS = [("red", None), ("green", 1)]
BASE = [("green", None)]


def steps(pairs):
    return {
        "mode": "absolute",
        "steps": [{"color": c, "value": v} for c, v in pairs],
    }


def target(ref, expr, legend="", table=False):
    t = {"datasource": DS, "refId": ref, "expr": expr}
    if table:
        t.update({"format": "table", "instant": True, "range": False})
    else:
        t.update({"legendFormat": legend or "__auto", "range": True, "instant": False})
    return t


def panel(kind, title, description, targets, unit=None, thresholds=BASE, w=12, h=8,
          show_thresholds=False, stack=False, bars=False, extra_options=None,
          transformations=None, minmax=None):
    defaults = {"color": {"mode": "palette-classic"}, "thresholds": steps(thresholds)}
    if unit:
        defaults["unit"] = unit
    if minmax:
        defaults["min"], defaults["max"] = minmax
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1,
            "fillOpacity": 80 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "thresholdsStyle": {"mode": "dashed" if show_thresholds else "off"},
        }
        options = {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif kind in ("gauge", "bargauge", "stat"):
        defaults["color"] = {"mode": "thresholds"}
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal" if kind == "bargauge" else "auto",
            "showThresholdMarkers": True,
            "showThresholdLabels": False,
        }
        if kind == "bargauge":
            options.update({"displayMode": "gradient", "valueMode": "color",
                            "showUnfilled": True, "minVizHeight": 16, "minVizWidth": 8,
                            "namePlacement": "auto", "sizing": "auto"})
        if kind == "stat":
            options.update({"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                            "textMode": "auto", "wideLayout": True})
    elif kind == "table":
        defaults["custom"] = {"align": "auto", "cellOptions": {"type": "auto"}}
        options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    else:
        raise ValueError(kind)
    if extra_options:
        options.update(extra_options)
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
        "_w": w,
        "_h": h,
    }
    if transformations:
        p["transformations"] = transformations
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


def query_var(name, label, query, all_value=".*", description=""):
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": DS,
        "definition": query,
        "query": query,
        "refresh": 2,
        "regex": "",
        "sort": 3,
        "multi": True,
        "includeAll": True,
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


DATASOURCE_VAR = {
    "type": "datasource",
    "name": "datasource",
    "label": "Data source",
    "query": "prometheus",
    "regex": "",
    "refresh": 1,
    "current": {},
    "options": [],
    "hide": 0,
    "includeAll": False,
    "multi": False,
    "skipUrlSync": False,
}


def layout(panels):
    """Places panels left to right in rows of 24 columns; assigns ids."""
    x = y = line_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_w"), p.pop("_h")
        if x + w > 24 or p["type"] == "row":
            x, y, line_h = 0, y + line_h, 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        out.append(p)
        x += w
        line_h = max(line_h, h)
        if p["type"] == "row":
            x, y, line_h = 0, y + h, 0
    return out


def dashboard(uid, title, description, variables, panels):
    return {
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [{
            "type": "dashboards",
            "title": "Headroom",
            "tags": ["headroom"],
            "asDropdown": True,
            "includeVars": True,
            "keepTime": True,
            "icon": "external link",
            "targetBlank": False,
            "tooltip": "",
            "url": "",
        }],
        "panels": layout(panels),
        "preload": False,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["headroom", "gpu"],
        "templating": {"list": [DATASOURCE_VAR] + variables},
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


# --- GPU overview -------------------------------------------------------------------------

G = 'instance=~"$node", gpu=~"$gpu"'
N = 'instance=~"$node"'
GPU_LEGEND = "{{instance}} GPU {{gpu}}"


def gpu_overview():
    usable = f"(headroom_gpu_memory_total_bytes{{{G}}} - headroom_gpu_memory_reserved_bytes{{{G}}})"
    variables = [
        query_var("node", "Node", "label_values(headroom_gpu_info, instance)",
                  description="Scrape target (the node name under the shipped ServiceMonitor)"),
        query_var("gpu", "GPU", f"label_values(headroom_gpu_info{{{N}}}, gpu)",
                  description="NVML GPU index"),
    ]
    panels = [
        row("Memory"),
        panel("gauge", "Memory used",
              "Used memory as a share of what processes can use (total − reserved). "
              "Orange: less than 10% free (HeadroomLowHeadroom); red: less than 3% "
              "(HeadroomNoHeadroom).",
              [target("A", f"headroom_gpu_memory_used_bytes{{{G}}} / {usable}", GPU_LEGEND)],
              unit="percentunit", thresholds=USED_STEPS, w=6, minmax=(0, 1)),
        panel("timeseries", "Memory used and usable",
              "Used memory against total − reserved (the driver's reserve is never "
              "available to processes).",
              [target("A", f"headroom_gpu_memory_used_bytes{{{G}}}", GPU_LEGEND + " used"),
               target("B", usable, GPU_LEGEND + " usable")],
              unit="bytes", w=10),
        panel("timeseries", "Free memory (headroom)",
              "Share of usable memory that is free. Dashed lines: the alert levels "
              "(10% HeadroomLowHeadroom, 3% HeadroomNoHeadroom).",
              [target("A", f"1 - headroom_gpu_memory_used_bytes{{{G}}} / {usable}",
                      GPU_LEGEND)],
              unit="percentunit", thresholds=FREE_STEPS, w=8, show_thresholds=True,
              minmax=(0, 1)),
        row("Activity"),
        panel("timeseries", "Graphics engine active",
              "GPM graphics/compute engine activity (Hopper and newer, MIG off; on MIG "
              "GPUs see the MIG instances dashboard).",
              [target("A", f"headroom_gpu_graphics_active_ratio{{{G}}}", GPU_LEGEND)],
              unit="percentunit", w=8, minmax=(0, 1)),
        panel("timeseries", "SM and tensor activity",
              "GPM: average share of SMs active, and share of time any tensor pipe was "
              "active.",
              [target("A", f"headroom_gpu_sm_active_ratio{{{G}}}", GPU_LEGEND + " SM"),
               target("B", f"headroom_gpu_tensor_active_ratio{{{G}}}",
                      GPU_LEGEND + " tensor")],
              unit="percentunit", w=8, minmax=(0, 1)),
        panel("timeseries", "NVML utilization",
              "Share of the sample period in which a kernel ran (nvmlDeviceGetUtilizationRates; "
              "absent on MIG-enabled GPUs).",
              [target("A", f"headroom_gpu_utilization_ratio{{{G}}}", GPU_LEGEND)],
              unit="percentunit", w=8, minmax=(0, 1)),
        row("Sensors"),
        panel("timeseries", "Temperature", "GPU die temperature.",
              [target("A", f"headroom_gpu_temperature_celsius{{{G}}}", GPU_LEGEND)],
              unit="celsius", w=8),
        panel("timeseries", "Power", "Power draw.",
              [target("A", f"headroom_gpu_power_watts{{{G}}}", GPU_LEGEND)],
              unit="watt", w=8),
        panel("timeseries", "SM clock", "SM clock frequency.",
              [target("A", f"headroom_gpu_sm_clock_hertz{{{G}}}", GPU_LEGEND)],
              unit="hertz", w=8),
        row("Errors and out-of-memory exits"),
        panel("timeseries", "Xid events",
              "Xid critical-error events per interval. 79: fallen off the bus "
              "(HeadroomXidGpuLost); 46, 48, 64, 74, 95, 119, 120, 140, 154: reset the GPU "
              "(HeadroomXidResetRequired); 63, 92, 94: memory errors "
              "(HeadroomXidMemoryDegraded).",
              [target("A", "sum by (instance, gpu, xid) (increase(headroom_xid_errors_total"
                           f"{{{G}}}[$__rate_interval]))", GPU_LEGEND + " Xid {{xid}}")],
              unit="short", w=8, bars=True),
        panel("table", "Xid totals since the exporter started",
              "Xid events counted per GPU and Xid since the exporter started.",
              [target("A", f"headroom_xid_errors_total{{{G}}}", table=True)],
              w=8, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "__name__": True, "job": True},
                  "renameByName": {"Value": "events"}}}]),
        panel("timeseries", "Out-of-memory exits",
              "OOM exits per interval: source=launcher is confirmed by `headroom-sidecar run`, "
              "source=inferred is a process that vanished at its MPS limit or on a full "
              "device (HeadroomOomEvent).",
              [target("A", "sum by (instance, gpu, source, workload) "
                           f"(increase(headroom_oom_events_total{{{G}}}[$__rate_interval]))",
                      GPU_LEGEND + " {{workload}} ({{source}})")],
              unit="short", w=8, bars=True),
        panel("timeseries", "GPU processes", "Processes NVML lists per GPU.",
              [target("A", f"count by (instance, gpu) (headroom_process_memory_used_bytes{{{G}}})",
                      GPU_LEGEND)],
              unit="short", w=8),
        panel("table", "GPUs", "Model, driver and MIG mode of each GPU.",
              [target("A", f"headroom_gpu_info{{{G}}}", table=True)],
              w=16, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "Value": True, "__name__": True,
                                    "job": True}}}]),
        row("Exporter"),
        panel("timeseries", "Collector success",
              "1 when the collector's last run made every NVML call it needed; 0 for 10 "
              "minutes fires HeadroomCollectorFailing.",
              [target("A", f"headroom_collector_success{{{N}}}", "{{instance}} {{collector}}")],
              unit="bool", thresholds=SUCCESS_STEPS, w=8, show_thresholds=True,
              minmax=(0, 1)),
        panel("timeseries", "Snapshot age",
              "Age of the snapshot the exporter serves; above 60 s for 2 minutes fires "
              "HeadroomSnapshotStale (an NVML call hangs).",
              [target("A", f"headroom_exporter_snapshot_age_seconds{{{N}}}", "{{instance}}")],
              unit="s", thresholds=AGE_STEPS, w=8, show_thresholds=True),
        panel("timeseries", "Failed NVML calls",
              "Failed NVML calls per interval by collector and reason.",
              [target("A", "sum by (instance, collector, reason) (increase("
                           f"headroom_collector_errors_total{{{N}}}[$__rate_interval]))",
                      "{{instance}} {{collector}} {{reason}}")],
              unit="short", w=8, bars=True),
        panel("timeseries", "Collector duration", "Duration of each collector's last run.",
              [target("A", f"headroom_collector_duration_seconds{{{N}}}",
                      "{{instance}} {{collector}}")],
              unit="s", w=12),
        panel("timeseries", "Exporter scrape up",
              "Prometheus' `up` for job headroom-exporter; 0 for 5 minutes fires "
              "HeadroomExporterDown.",
              [target("A", f'up{{job="headroom-exporter", {N}}}', "{{instance}}")],
              unit="bool", thresholds=SUCCESS_STEPS, w=12, minmax=(0, 1)),
    ]
    return dashboard("headroom-gpu-overview", "Headroom / GPU overview",
                     "Memory, activity, sensors, Xid errors and OOM exits per GPU "
                     "(headroom-exporter).", variables, panels)


# --- MIG instances ------------------------------------------------------------------------

M = 'instance=~"$node", gpu=~"$gpu", mig_uuid=~"$mig"'
MIG_LEGEND = "{{instance}} GPU {{gpu}} GI {{gpu_instance_id}} {{mig_profile}}"


def mig_instances():
    variables = [
        query_var("node", "Node", "label_values(headroom_mig_memory_total_bytes, instance)"),
        query_var("gpu", "GPU",
                  f"label_values(headroom_mig_memory_total_bytes{{{N}}}, gpu)"),
        query_var("mig", "MIG instance",
                  'label_values(headroom_mig_memory_total_bytes{instance=~"$node", '
                  'gpu=~"$gpu"}, mig_uuid)', all_value=".+",
                  description="MIG device UUID"),
    ]
    panels = [
        row("Instances"),
        panel("table", "MIG instances",
              "Every MIG instance: profile, GPU instance and compute instance ids, memory.",
              [target("A", f"headroom_mig_memory_total_bytes{{{M}}}", table=True)],
              unit="bytes", w=24, h=7, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "__name__": True, "job": True},
                  "renameByName": {"Value": "memory"}}}]),
        row("Memory"),
        panel("bargauge", "Memory used per instance",
              "Used memory as a share of the instance's memory. Orange: less than 10% free "
              "(HeadroomLowHeadroom); red: less than 3% (HeadroomNoHeadroom).",
              [target("A", f"headroom_mig_memory_used_bytes{{{M}}} / "
                           f"headroom_mig_memory_total_bytes{{{M}}}", MIG_LEGEND)],
              unit="percentunit", thresholds=USED_STEPS, w=8, minmax=(0, 1)),
        panel("timeseries", "Memory used and total",
              "Memory used in each instance against its size.",
              [target("A", f"headroom_mig_memory_used_bytes{{{M}}}", MIG_LEGEND + " used"),
               target("B", f"headroom_mig_memory_total_bytes{{{M}}}", MIG_LEGEND + " total")],
              unit="bytes", w=16),
        row("Activity"),
        panel("timeseries", "Graphics engine active",
              "GPM graphics engine activity per GPU instance (compute instances of one GPU "
              "instance share it). Below the dashed 1% line for 30 minutes fires "
              "HeadroomMigInstanceIdle.",
              [target("A", f"headroom_mig_graphics_active_ratio{{{M}}}", MIG_LEGEND)],
              unit="percentunit", thresholds=IDLE_STEPS, w=12, show_thresholds=True,
              minmax=(0, 1)),
        panel("timeseries", "SM and tensor activity",
              "GPM SM activity and tensor-pipe activity per GPU instance.",
              [target("A", f"headroom_mig_sm_active_ratio{{{M}}}", MIG_LEGEND + " SM"),
               target("B", f"headroom_mig_tensor_active_ratio{{{M}}}",
                      MIG_LEGEND + " tensor")],
              unit="percentunit", w=12, minmax=(0, 1)),
        panel("table", "Idle slices",
              "Instances whose graphics engine stayed below 1% active over the last 30 "
              "minutes: reserved capacity doing no work.",
              [target("A", f"max_over_time(headroom_mig_graphics_active_ratio{{{M}}}[30m]) "
                           "< 0.01", table=True)],
              unit="percentunit", w=24, h=6, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "job": True},
                  "renameByName": {"Value": "max graphics active (30m)"}}}]),
        row("Processes"),
        panel("timeseries", "Processes per instance", "Processes NVML lists in each instance.",
              [target("A", "count by (instance, gpu, mig_uuid) "
                           f"(headroom_process_memory_used_bytes{{{M}}})",
                      "{{instance}} GPU {{gpu}} {{mig_uuid}}")],
              unit="short", w=8),
        panel("timeseries", "Process memory",
              "GPU memory of each process, stacked per instance.",
              [target("A", f"headroom_process_memory_used_bytes{{{M}}}",
                      "{{mig_uuid}} pid {{pid}} {{workload}}")],
              unit="bytes", w=16, stack=True),
    ]
    return dashboard("headroom-mig-instances", "Headroom / MIG instances",
                     "Memory and graphics activity per MIG instance, idle slices "
                     "(headroom-exporter).", variables, panels)


# --- MPS clients --------------------------------------------------------------------------

P = 'instance=~"$node", gpu=~"$gpu", mps="true"'
L = 'instance=~"$node", gpu=~"$gpu"'
CLIENT_LEGEND = "{{instance}} GPU {{gpu}} {{workload}} pid {{pid}}"


def mps_clients():
    variables = [
        query_var("node", "Node",
                  'label_values(headroom_process_memory_used_bytes{mps="true"}, instance)'),
        query_var("gpu", "GPU",
                  'label_values(headroom_process_memory_used_bytes{mps="true", '
                  'instance=~"$node"}, gpu)'),
    ]
    ratio = (f"headroom_process_memory_used_bytes{{{P}}} / on (instance, job, gpu_uuid, pid) "
             f"group_left () headroom_mps_client_memory_limit_bytes{{{L}}}")
    panels = [
        row("Clients against their limits"),
        panel("bargauge", "Memory / limit now",
              "Each client's memory as a share of its CUDA_MPS_PINNED_DEVICE_MEM_LIMIT. "
              "Above 95% for 2 minutes fires HeadroomMpsClientNearLimit (the sidecar sets "
              "limits at learned peak × 1.1, so a client at its learned peak sits at 91%).",
              [target("A", ratio, CLIENT_LEGEND)],
              unit="percentunit", thresholds=LIMIT_STEPS, w=8, minmax=(0, 1)),
        panel("timeseries", "Memory / limit",
              "Each client's memory as a share of its limit over time; dashed: the 95% "
              "alert level.",
              [target("A", ratio, CLIENT_LEGEND)],
              unit="percentunit", thresholds=LIMIT_STEPS, w=16, show_thresholds=True,
              minmax=(0, 1)),
        panel("timeseries", "Client memory and limits",
              "GPU memory of each MPS client, and the limits of those that have one.",
              [target("A", f"headroom_process_memory_used_bytes{{{P}}}", CLIENT_LEGEND),
               target("B", f"headroom_mps_client_memory_limit_bytes{{{L}}}",
                      CLIENT_LEGEND + " limit")],
              unit="bytes", w=12),
        panel("timeseries", "Memory left under the limit",
              "Limit − used per client: what it can still allocate before its allocations "
              "fail.",
              [target("A", f"headroom_mps_client_memory_limit_bytes{{{L}}} - on (instance, "
                           "job, gpu_uuid, pid) group_left () "
                           f"headroom_process_memory_used_bytes{{{P}}}", CLIENT_LEGEND)],
              unit="bytes", w=12),
        row("Containers and pods"),
        panel("timeseries", "Memory per container",
              "MPS client memory summed per container (container id from the process's "
              "cgroup).",
              [target("A", "sum by (instance, container_id) (headroom_process_memory_used_bytes"
                           f'{{{P}, container_id!=""}})', "{{instance}} {{container_id}}")],
              unit="bytes", w=12, stack=True),
        panel("timeseries", "Memory per pod",
              "MPS client memory summed per pod (pod uid from the cgroup; namespace and name "
              "where the exporter knows them from the kubelet).",
              [target("A", "sum by (instance, namespace, pod, pod_uid) "
                           f'(headroom_process_memory_used_bytes{{{P}, pod_uid!=""}})',
                      "{{namespace}}/{{pod}} {{pod_uid}}")],
              unit="bytes", w=12, stack=True),
        row("Clients"),
        panel("table", "MPS clients",
              "Every MPS client now: pid, process, workload, MIG instance, container, pod.",
              [target("A", f"headroom_process_memory_used_bytes{{{P}}}", table=True)],
              unit="bytes", w=24, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "__name__": True, "job": True, "mps": True},
                  "renameByName": {"Value": "memory"}}}]),
        panel("timeseries", "Clients per GPU", "MPS clients NVML lists per GPU.",
              [target("A", f"count by (instance, gpu) (headroom_process_memory_used_bytes{{{P}}})",
                      GPU_LEGEND)],
              unit="short", w=12),
        panel("timeseries", "Out-of-memory exits by workload",
              "OOM exits per interval (launcher: confirmed by `headroom-sidecar run`; "
              "inferred: vanished at its limit or on a full device).",
              [target("A", "sum by (instance, gpu, workload, source) (increase("
                           f"headroom_oom_events_total{{{L}}}[$__rate_interval]))",
                      "{{instance}} GPU {{gpu}} {{workload}} ({{source}})")],
              unit="short", w=12, bars=True),
    ]
    return dashboard("headroom-mps-clients", "Headroom / MPS clients",
                     "Memory of each MPS client against its limit, per container and pod "
                     "(headroom-exporter).", variables, panels)


# --- Admission ----------------------------------------------------------------------------

D = 'instance=~"$node", device=~"$device"'
DEV_LEGEND = "{{instance}} {{device}}"


def admission():
    variables = [
        query_var("node", "Node", "label_values(headroom_admission_capacity_bytes, instance)"),
        query_var("device", "Device",
                  f"label_values(headroom_admission_capacity_bytes{{{N}}}, device)",
                  description="GPU or MIG UUID the sidecar manages"),
    ]

    def wait_quantile(q):
        return (f"histogram_quantile({q}, sum by (instance, device, le) "
                f"(rate(headroom_admission_wait_seconds_bucket{{{D}}}[$__rate_interval])))")

    panels = [
        row("Queue"),
        panel("timeseries", "Queued and running",
              "Requests waiting (per device they are planned on) and admitted processes. "
              "Requests queued for 30 minutes with no admission fire "
              "HeadroomAdmissionQueueStuck.",
              [target("A", f"headroom_admission_queue_length{{{D}}}", DEV_LEGEND + " queued"),
               target("B", f"headroom_admission_running{{{D}}}", DEV_LEGEND + " running")],
              unit="short", w=12),
        panel("timeseries", "Queue wait",
              "Time admitted requests spent queued: median and 90th percentile.",
              [target("A", wait_quantile(0.5), DEV_LEGEND + " p50"),
               target("B", wait_quantile(0.9), DEV_LEGEND + " p90")],
              unit="s", w=12),
        panel("timeseries", "Admissions and waits",
              "Requests admitted, and requests that could not start at once, per interval.",
              [target("A", "sum by (instance, device) (increase(headroom_admission_admitted_total"
                           f"{{{D}}}[$__rate_interval]))", DEV_LEGEND + " admitted"),
               target("B", "sum by (instance, device) (increase(headroom_admission_waits_total"
                           f"{{{D}}}[$__rate_interval]))", DEV_LEGEND + " had to wait")],
              unit="short", w=12, bars=True),
        panel("timeseries", "Rejected requests",
              "Requests refused per interval, by reason (too_large, unknown_device, "
              "bad_workload_name, invalid, duplicate).",
              [target("A", "sum by (instance, reason) (increase("
                           f"headroom_admission_rejected_total{{{N}}}[$__rate_interval]))",
                      "{{instance}} {{reason}}")],
              unit="short", w=12, bars=True),
        row("Memory"),
        panel("gauge", "Predicted peak / capacity",
              "The running set's predicted peak as a share of the device's capacity; above "
              "100% for 2 minutes fires HeadroomOomRisk.",
              [target("A", f"headroom_admission_predicted_peak_bytes{{{D}}} / "
                           f"headroom_admission_capacity_bytes{{{D}}}", DEV_LEGEND)],
              unit="percentunit", thresholds=PEAK_STEPS, w=6, minmax=(0, 1.2)),
        panel("timeseries", "Predicted peak against capacity",
              "Capacity, the running set's predicted peak, what admitted processes may reach "
              "(their limits), and live usage.",
              [target("A", f"headroom_admission_capacity_bytes{{{D}}}", DEV_LEGEND + " capacity"),
               target("B", f"headroom_admission_predicted_peak_bytes{{{D}}}",
                      DEV_LEGEND + " predicted peak"),
               target("C", f"headroom_admission_reserved_bytes{{{D}}}", DEV_LEGEND + " reserved"),
               target("D", f"headroom_admission_used_bytes{{{D}}}", DEV_LEGEND + " used")],
              unit="bytes", w=18),
        row("Out-of-memory exits"),
        panel("timeseries", "Confirmed and inferred OOMs",
              "Confirmed by `headroom-sidecar run` (exit status and CUDA/PyTorch/JAX message; "
              "sidecar) and inferred (a process vanished at its MPS limit or on a full device; "
              "exporter), per interval.",
              [target("A", "sum by (instance, workload) (increase(headroom_oom_events_total"
                           f'{{{N}, source="launcher"}}[$__rate_interval]))',
                      "{{instance}} {{workload}} confirmed"),
               target("B", "sum by (instance, workload) (increase(headroom_oom_events_total"
                           f'{{{N}, source="inferred"}}[$__rate_interval]))',
                      "{{instance}} {{workload}} inferred")],
              unit="short", w=16, bars=True),
        panel("table", "OOM totals", "OOM exits counted since each program started.",
              [target("A", "sum by (instance, source, workload) "
                           f"(headroom_oom_events_total{{{N}}})", table=True)],
              w=8, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True}, "renameByName": {"Value": "exits"}}}]),
        row("Learned profiles"),
        panel("stat", "Workloads with a profile", "Workloads the sidecar has learned.",
              [target("A", f"headroom_profile_known{{{N}}}", "{{instance}}")],
              unit="short", w=6),
        panel("table", "Learned profiles",
              "Learned peak memory and the number of runs it was learned from, per workload.",
              [target("A", f"headroom_profile_peak_bytes{{{N}}}", table=True),
               target("B", f"headroom_profile_runs{{{N}}}", table=True)],
              unit="bytes", w=12, transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {
                      "excludeByName": {"Time": True, "__name__": True, "job": True},
                      "renameByName": {"Value #A": "peak", "Value #B": "runs"}}}]),
        panel("timeseries", "Sidecar scrape up",
              "Prometheus' `up` for job headroom-sidecar; 0 for 5 minutes fires "
              "HeadroomSidecarDown.",
              [target("A", f'up{{job="headroom-sidecar", {N}}}', "{{instance}}")],
              unit="bool", thresholds=SUCCESS_STEPS, w=6, minmax=(0, 1)),
    ]
    return dashboard("headroom-admission", "Headroom / Admission",
                     "The sidecar's queue, waits, predicted peak against capacity, confirmed "
                     "and inferred OOMs, learned profiles (headroom-sidecar).", variables, panels)


DASHBOARDS = {
    "gpu-overview.json": gpu_overview,
    "mig-instances.json": mig_instances,
    "mps-clients.json": mps_clients,
    "admission.json": admission,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT / name
        text = render(build)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("dashboards out of date (run python3 dashboards/generate.py): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
