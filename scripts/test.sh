#!/usr/bin/env bash
# Runs every test Headroom has that needs no GPU. Installs what the end-to-end tests use when
# it is missing: Prometheus and promtool (Debian package `prometheus`) and the Python
# OpenMetrics parser (PyPI `prometheus-client`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  python3 -m pip install -q prometheus-client 2>/dev/null ||
    python3 -m pip install -q --break-system-packages prometheus-client
fi

# The tests load the fake NVML cdylib and run the real binaries: build the whole workspace.
cargo build --workspace --quiet
cargo nextest run --workspace --no-fail-fast "$@"
