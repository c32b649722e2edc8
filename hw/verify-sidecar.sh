#!/usr/bin/env bash
# Hardware verification of headroom-sidecar (issue 3, acceptance 4), on a GPU machine through
# the device tool: bash hw/verify-sidecar.sh   (binaries in .hw/, results in $OUT)
#
# With a private MPS daemon: three TI2V-shaped PyTorch jobs (hw/ti2v_job.py, 19 GiB steady,
# 31 GiB late peak, 40 s) at once without the sidecar (expect an OOM); the sidecar learns the
# workload from one run, then the same three through `headroom-sidecar run` (expect none);
# then two neighbours and one job whose peak overruns by 30% (expect it alone to fail on its
# MPS limit). Never changes GPU settings.
set -uo pipefail
RESULTS=${OUT:-/tmp/headroom-sc-results}
W=$(mktemp -d /tmp/headroom-sc.XXXXXX)
mkdir -p "$RESULTS"
HERE=$(cd "$(dirname "$0")/.." && pwd)
SC=$HERE/.hw/headroom-sidecar
JOB="python3 $HERE/hw/ti2v_job.py --seconds ${JOB_SECONDS:-20}"
say() { echo "[$(date +%T)] $*"; echo "$*" >> "$W/summary.txt"; }
export CUDA_MPS_PIPE_DIRECTORY=$W/mps-pipe CUDA_MPS_LOG_DIRECTORY=$W/mps-log PYTHONUNBUFFERED=1
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current --format=csv,noheader; } > "$W/env.txt"
nvidia-cuda-mps-control -d || { echo "MPS daemon failed"; exit 1; }
trap 'echo quit | nvidia-cuda-mps-control; sleep 1' EXIT

three() { # $1 = label, rest = launcher prefix
  local label=$1; shift
  local t0=$(date +%s.%N) pids=()
  for i in 1 2 3; do
    ( timeout 100 "$@" $JOB > "$W/$label-$i.out" 2> "$W/$label-$i.err"; say "$label job$i exit $? at $(python3 -c "import time;print(round(time.time()-$t0,1))")" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
}

say "phase: three at once without the sidecar"
export CUDA_VISIBLE_DEVICES=0
three without
unset CUDA_VISIBLE_DEVICES

"$SC" serve --socket "$W/sc.sock" --state-dir "$W/state" --metrics-listen 127.0.0.1:9402 --interval 500ms \
  --mps-pipe-directory "$CUDA_MPS_PIPE_DIRECTORY" > /dev/null 2> "$W/daemon.log" &
SCP=$!
for _ in $(seq 100); do grep -q "serving" "$W/daemon.log" && break; sleep 0.2; done
say "daemon: $(tail -2 "$W/daemon.log")"
RUN=("$SC" run --socket "$W/sc.sock" --workload ti2v-hw --timeout 90s --)
say "phase: learning run"
"$SC" run --socket "$W/sc.sock" --workload ti2v-hw --peak 32GiB --timeout 60s -- $JOB > "$W/learn.out" 2> "$W/learn.err"
say "learning run exit $?: $(tail -3 "$W/learn.err" | tr '\n' ' ')"
"$SC" profiles --socket "$W/sc.sock" show ti2v-hw > "$W/profile.txt" 2>&1
say "phase: three through the sidecar"
three through "${RUN[@]}"
say "phase: two neighbours and a 30% peak overrun"

# Two neighbours and one job whose peak is 30% larger than learned.
pids=()
( timeout 150 "${RUN[@]}" $JOB > "$W/n1.out" 2> "$W/n1.err"; say "neighbour1 exit $?" ) & pids+=($!)
( timeout 150 "${RUN[@]}" $JOB > "$W/n2.out" 2> "$W/n2.err"; say "neighbour2 exit $?" ) & pids+=($!)
( timeout 150 "${RUN[@]}" $JOB --overrun 1.3 > "$W/over.out" 2> "$W/over.err"; say "overrun exit $?" ) & pids+=($!)
wait "${pids[@]}"
curl -s http://127.0.0.1:9402/metrics > "$W/sidecar.prom"
kill -TERM $SCP; wait $SCP; echo "sidecar exit $? after SIGTERM" >> "$W/summary.txt"
grep -c "out of memory" "$W"/without-*.err | sed 's/^/oom-lines /' >> "$W/summary.txt"
grep -c "out of memory" "$W"/through-*.err | sed 's/^/oom-lines /' >> "$W/summary.txt"
grep -E "msg=\"(admitted|finished|profile learned|launched process ran out)" "$W/daemon.log" >> "$W/summary.txt"
cat "$W/env.txt"; tail -25 "$W/daemon.log"
tar -C "$W" -czf "$RESULTS/raw.tgz" --exclude mps-pipe --exclude state .
cp "$W/summary.txt" "$RESULTS/"
