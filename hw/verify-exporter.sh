#!/usr/bin/env bash
# Hardware verification of headroom-exporter (issue 2, acceptance 5), run on a GPU machine
# through the device tool:  bash hw/verify-exporter.sh   (binaries in .hw/, results in $OUT)
#
# 1. starts a private MPS control daemon; 2. runs the exporter on the real NVML;
# 3. scrapes it idle; 4. starts two PyTorch MPS clients with different
#    CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, one running bf16 matmuls; 5. scrapes under load and
#    records nvidia-smi --query-compute-apps at the same moment; 6. checks a client over its
#    limit fails alone; 7. dumps the MIG profile table NVML reports with MIG mode off.
# Never changes GPU settings (MIG mode stays as it is; no reset).
set -uo pipefail
# Work in a private folder; only the summary and one archive of everything go to $OUT
# (the device tool returns a handful of files).
RESULTS=${OUT:-/tmp/headroom-hw-results}
OUT=$(mktemp -d /tmp/headroom-hw.XXXXXX)
mkdir -p "$RESULTS"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$HERE/.hw/headroom-exporter
export CUDA_MPS_PIPE_DIRECTORY=/tmp/headroom-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/headroom-mps/log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
export CUDA_VISIBLE_DEVICES=0 PYTHONUNBUFFERED=1

{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current --format=csv,noheader
  uname -r
} > "$OUT/env.txt" 2>&1

python3 "$HERE/hw/mig_profiles.py" > "$OUT/mig_profiles.json" 2> "$OUT/mig_profiles.err"

nvidia-cuda-mps-control -d || { echo "MPS daemon failed to start"; exit 1; }
trap 'echo quit | nvidia-cuda-mps-control; sleep 1' EXIT

"$BIN" --listen 127.0.0.1:9401 --interval 1s --log-format json > /dev/null 2> "$OUT/exporter.log" &
EXP=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:9401/readyz >/dev/null && break; sleep 0.2; done
sleep 3
curl -s http://127.0.0.1:9401/metrics > "$OUT/idle.prom"

HEADROOM_WORKLOAD=client-a CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=16G \
  python3 "$HERE/hw/mps_client.py" --alloc-gib 8 --seconds 40 --matmul > "$OUT/client_a.json" 2> "$OUT/client_a.err" &
A=$!
HEADROOM_WORKLOAD=client-b CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=24G \
  python3 "$HERE/hw/mps_client.py" --alloc-gib 12 --seconds 40 > "$OUT/client_b.json" 2> "$OUT/client_b.err" &
B=$!
sleep 25
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits > "$OUT/smi_apps.csv"
curl -s http://127.0.0.1:9401/metrics > "$OUT/load.prom"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits > "$OUT/smi_apps_after.csv"

# A client that asks for more than its limit must fail alone.
HEADROOM_WORKLOAD=client-c CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=2G \
  python3 "$HERE/hw/mps_client.py" --alloc-gib 4 --seconds 2 > "$OUT/client_c.json" 2> "$OUT/client_c.err"
echo "client_c exit $?" >> "$OUT/env.txt"
sleep 2
curl -s http://127.0.0.1:9401/metrics > "$OUT/after_c.prom"
wait $A; echo "client_a exit $?" >> "$OUT/env.txt"
wait $B; echo "client_b exit $?" >> "$OUT/env.txt"
sleep 3
curl -s http://127.0.0.1:9401/metrics > "$OUT/end.prom"
kill -TERM $EXP; wait $EXP; echo "exporter exit $? after SIGTERM" >> "$OUT/env.txt"
python3 "$HERE/hw/analyze_exporter.py" "$OUT" | tee "$OUT/summary.txt"
tar -C "$OUT" -czf "$RESULTS/raw.tgz" .
cp "$OUT/summary.json" "$OUT/env.txt" "$RESULTS/"
