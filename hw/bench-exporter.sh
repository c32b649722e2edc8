#!/usr/bin/env bash
# Exporter performance on real hardware (issue 6, benchmark 4), run on an H100/H200 through
# the device tool:  bash hw/bench-exporter.sh   (binaries in .hw/, results in $OUT)
#
# Needs: .hw/headroom-exporter and .hw/headroom-bench from `cargo build --release`
# (`cargo build --release -p headroom-bench -p headroom-exporter && mkdir -p .hw &&
#  cp target/release/headroom-{exporter,bench} .hw/`), PyTorch, nvidia-ml-py and
# prometheus_client on the machine, nvidia-smi and nvidia-cuda-mps-control on PATH.
#
# 1. starts a private MPS control daemon (pipe and log dirs in /tmp) and 8 PyTorch MPS clients
#    holding memory (hw/mps_client.py), some with CUDA_MPS_PINNED_DEVICE_MEM_LIMIT;
# 2. `headroom-bench collect` on the real libnvidia-ml.so.1: Headroom's collection cycle vs
#    the raw NVML floor (CPU per cycle, ratio), back to back at 100 ms and at 1 s spacing;
# 3. `headroom-bench compare` at a 1 s interval, one scrape per interval, 60 s each:
#    headroom-exporter (all collectors), headroom-exporter (device,process: the same metrics
#    as the others), hw/pynvml_exporter.py (pynvml + prometheus_client) and
#    hw/smi_exporter.py (two nvidia-smi queries per scrape): CPU per collect-and-scrape and
#    scrape latency side by side;
# 4. stops the clients and the daemon; writes summary.json (figures and targets) and raw.tgz.
# Takes about 6.5 minutes (under the device tool's 10-minute limit).
# Never changes GPU settings (MIG mode stays as it is; no reset).
set -uo pipefail
RESULTS=${OUT:-/tmp/headroom-bench-results}
OUT=$(mktemp -d /tmp/headroom-bench.XXXXXX)
mkdir -p "$RESULTS"
HERE=$(cd "$(dirname "$0")/.." && pwd)
EXP=$HERE/.hw/headroom-exporter
BENCH=$HERE/.hw/headroom-bench
CLIENTS=${CLIENTS:-8}
SECONDS_EACH=${SECONDS_EACH:-60}
export CUDA_MPS_PIPE_DIRECTORY=/tmp/headroom-mps-bench/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/headroom-mps-bench/log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
export CUDA_VISIBLE_DEVICES=0 PYTHONUNBUFFERED=1

for f in "$EXP" "$BENCH"; do
  [ -x "$f" ] || { echo "missing $f (see the header of this script)"; exit 2; }
done

{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current --format=csv,noheader
  uname -r
  nproc
  python3 -c 'import importlib.metadata as m; print("nvidia-ml-py", m.version("nvidia-ml-py")); print("prometheus_client", m.version("prometheus_client")); import torch; print("torch", torch.__version__)'
} > "$OUT/env.txt" 2>&1

nvidia-cuda-mps-control -d || { echo "MPS daemon failed to start"; exit 1; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  echo quit | nvidia-cuda-mps-control
  sleep 1
}
trap cleanup EXIT

# 8 MPS clients holding 1-2.5 GiB each for longer than the whole run; half have a limit.
for i in $(seq 1 "$CLIENTS"); do
  gib=$(python3 -c "print(1 + ($i % 4) * 0.5)")
  limit=()
  [ $((i % 2)) -eq 0 ] && limit=(CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=8G)
  env "${limit[@]}" HEADROOM_WORKLOAD=client-$i \
    python3 "$HERE/hw/mps_client.py" --alloc-gib "$gib" --seconds 560 \
      > "$OUT/client_$i.json" 2> "$OUT/client_$i.err" &
  PIDS+=($!)
done
# Wait until every client holds its memory (nvidia-smi lists them with the MPS server).
for _ in $(seq 120); do
  n=$(nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -c .)
  [ "$n" -ge $((CLIENTS + 1)) ] && break
  sleep 1
done
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits > "$OUT/smi_apps.csv"
echo "compute apps listed: $(grep -c . "$OUT/smi_apps.csv")" >> "$OUT/env.txt"

# 2. Collection cycle vs the raw NVML floor.
"$BENCH" collect --interval 100ms --cycles 50 --rounds 4 --json > "$OUT/collect.json" 2> "$OUT/collect.err"
"$BENCH" collect --interval 1s --cycles 10 --rounds 2 --json > "$OUT/collect_1s.json" 2>> "$OUT/collect.err"

# 3. Exporters side by side at 1 s.
"$BENCH" compare --interval 1s --seconds "$SECONDS_EACH" --warmup 3 --json \
  --exporter "headroom=127.0.0.1:9411=$EXP --listen 127.0.0.1:9411 --interval 1s" \
  --exporter "headroom-device-process=127.0.0.1:9414=$EXP --listen 127.0.0.1:9414 --interval 1s --collectors device,process" \
  --exporter "pynvml=127.0.0.1:9412=python3 $HERE/hw/pynvml_exporter.py --port 9412 --interval 1" \
  --exporter "nvidia-smi=127.0.0.1:9413=python3 $HERE/hw/smi_exporter.py --port 9413" \
  > "$OUT/compare.json" 2> "$OUT/compare.err"

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / name).read_text())
    except Exception as e:  # keep going: the summary says what is missing
        return {"error": f"{name}: {e}"}
collect, collect_1s, compare = load("collect.json"), load("collect_1s.json"), load("compare.json")
rows = {r["name"]: r for r in compare.get("rows", [])}
def cpu(name):
    return rows.get(name, {}).get("cpu_us_per_scrape")
h, hdp, py, smi = cpu("headroom"), cpu("headroom-device-process"), cpu("pynvml"), cpu("nvidia-smi")
summary = {
    "env": (out / "env.txt").read_text(),
    "collect_100ms": {k: collect.get(k) for k in ("gpus", "processes_last_cycle", "headroom", "floor", "ratio_p50", "ratio_mean", "collector_errors_last_cycle", "error")},
    "collect_1s": {k: collect_1s.get(k) for k in ("headroom", "floor", "ratio_p50", "ratio_mean", "error")},
    "compare": compare,
    "targets": {
        "collect_ratio_le_1_3": collect.get("ratio_p50") is not None and collect["ratio_p50"] <= 1.3,
        "pynvml_over_headroom": py / h if h and py else None,
        "pynvml_ge_2_5x": bool(h and py and py >= 2.5 * h),
        "smi_over_headroom": smi / h if h and smi else None,
        "smi_ge_150x": bool(h and smi and smi >= 150 * h),
        "pynvml_over_headroom_same_metrics": py / hdp if hdp and py else None,
    },
}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
for name, c in (("collect, 100 ms apart", collect), ("collect, 1 s apart", collect_1s)):
    if "headroom" in c:
        print(f"{name}: Headroom CPU p50 {c['headroom']['cpu']['p50_us']:.0f} µs/cycle, floor {c['floor']['cpu']['p50_us']:.0f} µs/cycle, ratio {c['ratio_p50']:.2f}x (mean {c['ratio_mean']:.2f}x)")
    else:
        print(f"{name}: {c.get('error')}")
for name, r in rows.items():
    print(f"{name:24s} CPU {r['cpu_us_per_scrape']:9.0f} µs/collect+scrape  p50 {r['latency']['p50_us']/1e3:8.3f} ms  p99 {r['latency']['p99_us']/1e3:8.3f} ms  {r['samples_last_scrape']} samples  RSS {r['rss_bytes_end']/2**20:.1f} MiB")
print(json.dumps(summary["targets"], indent=2))
EOF

tar -C "$OUT" -czf "$RESULTS/raw.tgz" .
cp "$OUT/summary.json" "$OUT/env.txt" "$RESULTS/"
