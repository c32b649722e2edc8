#!/usr/bin/env python3
"""Dumps the MIG GPU-instance profile table NVML reports for GPU 0 (works with MIG mode off)
as JSON, with each profile's possible placements, using nvidia-ml-py (pynvml)."""
import json

import pynvml as n

n.nvmlInit()
h = n.nvmlDeviceGetHandleByIndex(0)
out = {"name": n.nvmlDeviceGetName(h), "driver": n.nvmlSystemGetDriverVersion(), "profiles": []}
for pid in range(n.NVML_GPU_INSTANCE_PROFILE_COUNT):
    try:
        info = n.nvmlDeviceGetGpuInstanceProfileInfoV(h, pid, n.nvmlGpuInstanceProfileInfo_v2)
    except Exception:
        try:
            info = n.nvmlDeviceGetGpuInstanceProfileInfo(h, pid)
        except n.NVMLError as e:
            out["profiles"].append({"profile_index": pid, "error": str(e)})
            continue
    p = {"profile_index": pid}
    for f, _ in info._fields_:
        v = getattr(info, f)
        p[f] = v.decode() if isinstance(v, bytes) else v
    try:
        pl = n.nvmlDeviceGetGpuInstancePossiblePlacements(h, info.id)
        p["placements"] = [[x.start, x.size] for x in pl]
    except Exception as e:
        p["placements_error"] = str(e)
    out["profiles"].append(p)
print(json.dumps(out, indent=1, default=str))
