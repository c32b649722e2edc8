#!/usr/bin/env bash
# Hardware check of the planner's MIG tables (issue 9, acceptance 2), run on a GPU machine
# through the device tool:  bash hw/verify-mig-table.sh   (release headroom-sidecar in .hw/,
# results in $OUT). Reads, with MIG mode off, the GPU-instance profile table and every
# profile's possible placements from NVML (`plan --gpu 0 --dump-table`), compares them with
# the built-in table for the GPU's model (`plan --gpu 0 --check-table`, exit 0 = agree), and
# plans the seeds' mix on the real NVML. Never changes GPU settings (no MIG mode change, no
# instance created, no reset). NVML gives placements to root only.
set -uo pipefail
OUT=${OUT:-/tmp/headroom-hw-results}
mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=$HERE/.hw/headroom-sidecar
SUDO=""
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi

{
  date -u +%FT%TZ
  id -u
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current --format=csv,noheader
  uname -r
} > "$OUT/env.txt" 2>&1

# nvidia-smi's own view, for reference (may refuse while MIG mode is off).
{ $SUDO nvidia-smi mig -i 0 -lgip; $SUDO nvidia-smi mig -i 0 -lgipp; } > "$OUT/nvidia-smi-mig.txt" 2>&1

$SUDO "$BIN" plan --gpu 0 --dump-table > "$OUT/mig-table.json" 2> "$OUT/dump.err"
echo "dump exit $?" >> "$OUT/dump.err"
$SUDO "$BIN" plan --gpu 0 --check-table > "$OUT/check.txt" 2>&1
echo "check exit $?" | tee -a "$OUT/check.txt"
$SUDO "$BIN" plan --gpu 0 --mix ti2v-5b=3,s2v-14b=1 > "$OUT/plan.txt" 2>&1
echo "plan exit $?" >> "$OUT/plan.txt"
cat "$OUT/check.txt"
