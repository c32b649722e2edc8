#!/usr/bin/env bash
# Short fuzz run for CI (issue 7): builds the cargo-fuzz targets in fuzz/ and runs each for
# FUZZ_SECONDS (default 20), two at a time, from its seed corpus in fuzz/corpus/TARGET, after
# replaying the reproducers of fixed crashes in fuzz/regressions/TARGET (if any). Exits
# non-zero if any target crashes, fails a property, times out on one input (10 s) or exceeds
# 1 GiB of RSS; the failing input is left in fuzz/artifacts/TARGET/. New corpus entries go to
# a scratch directory, so the committed seeds stay as they are.
#
# The toolchain is stable; cargo-fuzz needs nightly compiler flags (-Zsanitizer=address),
# which RUSTC_BOOTSTRAP=1 unlocks. Installs cargo-fuzz from crates.io when it is missing.
# Usage: scripts/fuzz-smoke.sh [TARGET...]   (default: every target in fuzz/Cargo.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
start=$(date +%s)
if (($#)); then
  for t in "${targets[@]}"; do cargo fuzz build "$t"; done
else
  cargo fuzz build
fi
echo "fuzz smoke: built ${#targets[@]} targets in $(($(date +%s) - start)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The panic message (or sanitizer summary) and the end of a failed run's log.
report() {
  grep -A 4 -E '^thread .* panicked at|^==[0-9]+==ERROR' "$1" | head -n 24 || true
  tail -n 12 "$1"
}

# Runs one target; leaves its log and the number of executions in $scratch, and fails if the
# target crashed.
run_target() {
  local t=$1 log="$scratch/$1.log"
  local opts=(-rss_limit_mb=1024 -timeout=10 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && opts+=("-dict=fuzz/dicts/$t.dict")
  [ "$t" = scenario ] && opts+=(-max_len=8192)
  if compgen -G "fuzz/regressions/$t/*" >/dev/null; then
    cargo fuzz run "$t" fuzz/regressions/"$t"/* -- "${opts[@]}" >"$log.regressions" 2>&1 || {
      report "$log.regressions"
      return 1
    }
  fi
  mkdir -p "$scratch/$t"
  cargo fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- "${opts[@]}" -max_total_time="$seconds" \
    >"$log" 2>&1 || {
    report "$log"
    return 1
  }
}

# Two targets at a time (CI has 2 cores).
failed=()
total=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pair=("${targets[@]:i:2}")
  pids=()
  for t in "${pair[@]}"; do
    run_target "$t" &
    pids+=($!)
  done
  for j in "${!pair[@]}"; do
    t=${pair[j]}
    if wait "${pids[j]}"; then
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log" | tail -n 1)
      total=$((total + ${runs:-0}))
      echo "fuzz smoke: $t ok, ${runs:-0} executions in ${seconds} s"
    else
      echo "fuzz smoke: $t FAILED (input in fuzz/artifacts/$t/)" >&2
      failed+=("$t")
    fi
  done
done
elapsed=$(($(date +%s) - start))
if ((${#failed[@]})); then
  echo "fuzz smoke: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]} (${elapsed} s)" >&2
  exit 1
fi
echo "fuzz smoke: all ${#targets[@]} targets clean, $total executions in ${elapsed} s"
