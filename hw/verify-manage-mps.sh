#!/usr/bin/env bash
# Hardware check of `headroom-sidecar serve --manage-mps` (issue 3) on a GPU machine through
# the device tool: bash hw/verify-manage-mps.sh   (binaries in .hw/, results in $OUT)
#
# The sidecar starts the real nvidia-cuda-mps-control for GPU 0 in a private pipe/log
# directory; a PyTorch client admitted through `run` must become a client of that daemon and
# get its MPS memory limit; a second client that allocates past its declared peak must fail
# on the limit; the control daemon, killed, must be started again; SIGTERM must make the
# sidecar tell it to quit. Never changes GPU settings.
set -uo pipefail
RESULTS=${OUT:-/tmp/headroom-mm-results}
mkdir -p "$RESULTS"
W=$(mktemp -d /tmp/hmm.XXXXXX)
HERE=$(cd "$(dirname "$0")/.." && pwd)
SC=$HERE/.hw/headroom-sidecar
say() { echo "[$(date +%T)] $*" | tee -a "$RESULTS/summary.txt"; }
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current --format=csv,noheader; } > "$RESULTS/env.txt"
UUID=$(nvidia-smi --query-gpu=uuid --format=csv,noheader -i 0)
PIPE=$W/mps/$UUID/pipe LOGD=$W/mps/$UUID/log
ctl_pids() { pgrep -f '^nvidia-cuda-mps-control' | tr '\n' ' '; }
# A daemon left by an earlier, interrupted run of this script: tell it to quit.
for p in $(ctl_pids); do
  old=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^CUDA_MPS_PIPE_DIRECTORY=\(\/tmp\/hmm\..*\)/\1/p')
  [ -n "$old" ] && { echo quit | CUDA_MPS_PIPE_DIRECTORY=$old timeout 10 nvidia-cuda-mps-control; say "quit a leftover daemon $p ($old)"; }
done
pkill -f 'headroom-sidecar serve' && sleep 1
say "control daemons before: [$(ctl_pids)]"

"$SC" serve --socket "$W/sc.sock" --state-dir "$W/state" --metrics-listen 127.0.0.1:9402 \
  --interval 500ms --gpus 0 --manage-mps --mps-root "$W/mps" > /dev/null 2> "$W/daemon.log" &
SCP=$!
for _ in $(seq 100); do grep -q "serving" "$W/daemon.log" && break; sleep 0.2; done
say "daemon log: $(grep -E 'MPS|serving' "$W/daemon.log" | tr '\n' ' ')"
say "control daemons after start: [$(ctl_pids)]; pipe dir: $(ls "$PIPE" | tr '\n' ' '); modes: $(stat -c '%a %n' "$PIPE" "$LOGD" | tr '\n' ' ')"

RUN=("$SC" run --socket "$W/sc.sock" --timeout 60s)
# A client holding 6 GiB for 15 s, declared at 8 GiB: admitted, runs under the managed daemon.
"${RUN[@]}" --workload mm-probe --peak 8GiB -- python3 "$HERE/hw/mps_client.py" --alloc-gib 6 --seconds 15 \
    > "$W/probe.out" 2> "$W/probe.err" &
PROBE=$!
for _ in $(seq 60); do
  echo get_server_list | CUDA_MPS_PIPE_DIRECTORY=$PIPE timeout 5 nvidia-cuda-mps-control > "$W/servers.txt" 2>&1
  SERVER=$(head -1 "$W/servers.txt")
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader > "$W/apps.txt"
  [ -n "$SERVER" ] && grep -q python "$W/apps.txt" && break
  sleep 0.5
done
say "MPS servers of the managed daemon: $(tr '\n' ' ' < "$W/servers.txt")"
[ -n "$SERVER" ] && echo "get_client_list $SERVER" | CUDA_MPS_PIPE_DIRECTORY=$PIPE timeout 5 nvidia-cuda-mps-control > "$W/clients.txt" 2>&1
say "its clients: $(tr '\n' ' ' < "$W/clients.txt" 2>/dev/null)"
say "compute apps: $(tr '\n' ';' < "$W/apps.txt")"
timeout 60 tail --pid=$PROBE -f /dev/null
wait $PROBE
say "probe exit $?: $(tail -1 "$W/probe.out") $(tail -2 "$W/probe.err" | tr '\n' ' ' | cut -c1-200)"

# Past its limit: declared 4 GiB (limit 4 GiB), allocates 6 GiB.
timeout 60 "${RUN[@]}" --workload mm-over --peak 4GiB -- python3 "$HERE/hw/mps_client.py" --alloc-gib 6 --seconds 2 \
  > "$W/over.out" 2> "$W/over.err"
say "overrun exit $? (3 = CUDA OOM at the MPS limit): $(grep -m1 -i 'out of memory' "$W/over.err" | cut -c1-160)"

# Kill the control daemon: the sidecar must start it again.
sleep 2
BEFORE=$(ctl_pids)
for p in $BEFORE; do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "CUDA_MPS_PIPE_DIRECTORY=$PIPE" && kill -9 "$p" && say "killed control daemon $p"; done
for _ in $(seq 40); do grep -q "starting it again" "$W/daemon.log" && grep -c "MPS control daemon started" "$W/daemon.log" | grep -q 2 && break; sleep 0.25; done
say "after kill: [$(ctl_pids)]; $(grep -E 'starting it again|daemon started' "$W/daemon.log" | tail -2 | tr '\n' ' ')"
( timeout 60 "${RUN[@]}" --workload mm-probe -- python3 "$HERE/hw/mps_client.py" --alloc-gib 2 --seconds 2 \
    > "$W/probe2.out" 2> "$W/probe2.err"; say "client after restart exit $?: $(tail -1 "$W/probe2.out")" )

curl -s http://127.0.0.1:9402/metrics > "$W/sidecar.prom"
kill -TERM $SCP; timeout 30 tail --pid=$SCP -f /dev/null; wait $SCP; say "sidecar exit $? after SIGTERM"
sleep 1
say "control daemons after shutdown: [$(ctl_pids)]; $(grep -E 'quit|stopped|left running' "$W/daemon.log" | tr '\n' ' ')"
cp -r "$W"/*.log "$W"/*.txt "$W"/*.out "$W"/*.err "$W/sidecar.prom" "$RESULTS/" 2>/dev/null
cp -r "$LOGD" "$RESULTS/mps-log" 2>/dev/null
# Leave nothing behind.
for p in $(ctl_pids); do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q "CUDA_MPS_PIPE_DIRECTORY=$W" && { echo quit | CUDA_MPS_PIPE_DIRECTORY=$PIPE nvidia-cuda-mps-control; }; done
exit 0
