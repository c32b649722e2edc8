#!/usr/bin/env bash
# Checks deploy/ offline (issue 5, acceptance 4):
#  - `kubectl kustomize` builds deploy/kubernetes and deploy/kubernetes/examples, and every
#    manifest file there is listed in its kustomization (nothing escapes the checks below);
#  - the built manifests pass offline schema validation: built-in kinds with
#    kubernetes-validate (strict) for Kubernetes 1.30 and 1.33, prometheus-operator kinds
#    against their CRD schemas (tests/ops/validate_manifests.py);
#  - deploy/kubernetes/prometheusrule.yaml matches alerts/ (tests/ops/gen_prometheusrule.py);
#  - the Dockerfiles pass hadolint and build packages and binaries that exist;
#  - the systemd units pass `systemd-analyze verify` with no warning and score OK or better
#    in `systemd-analyze security`;
#  - every HEADROOM_* variable deploy/ sets is one the binaries read (`--help` lists them),
#    and every binary path it runs is a binary the workspace builds.
# Needs: kubectl, python3 with kubernetes-validate, hadolint, systemd-analyze, and the debug
# binaries (cargo build --workspace); scripts/test.sh installs the tools.
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSIONS=(-k 1.30.0 -k 1.33.0)
# Where cargo put the debug binaries (CARGO_TARGET_DIR or the workspace's target/).
bin_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "check_deploy: $*" >&2
  exit 1
}

# --- Kubernetes -----------------------------------------------------------------------
for dir in deploy/kubernetes deploy/kubernetes/examples; do
  out="$tmp/$(basename "$dir").yaml"
  kubectl kustomize "$dir" >"$out" || fail "kubectl kustomize $dir failed"
  for f in "$dir"/*.yaml; do
    name=$(basename "$f")
    [ "$name" = kustomization.yaml ] && continue
    grep -Eq "^  - $name\$" "$dir/kustomization.yaml" ||
      fail "$f is not listed in $dir/kustomization.yaml (so it would not be validated)"
  done
  python3 tests/ops/validate_manifests.py "${K8S_VERSIONS[@]}" "$out"
done
python3 tests/ops/gen_prometheusrule.py --check

# --- Docker ---------------------------------------------------------------------------
hadolint deploy/docker/*.Dockerfile
for f in deploy/docker/*.Dockerfile; do
  pkg=$(sed -n 's/.*cargo build --release --locked -p \([a-z-]*\).*/\1/p' "$f")
  bin=$(sed -n 's#.*target/release/\([a-z-]*\) .*#\1#p' "$f")
  [ -n "$pkg" ] && [ -n "$bin" ] || fail "$f: no 'cargo build ... -p PKG' or target/release/BIN"
  cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json,sys; pkg,b=sys.argv[1:]; m=json.load(sys.stdin)
ok=any(p["name"]==pkg and any(t["name"]==b and "bin" in t["kind"] for t in p["targets"]) for p in m["packages"])
sys.exit(0 if ok else 1)' "$pkg" "$bin" || fail "$f: package $pkg has no binary $bin (or Cargo.lock is stale)"
  [ -f "$f.dockerignore" ] || fail "$f.dockerignore missing (the build context is the repository root)"
done

# --- systemd --------------------------------------------------------------------------
for unit in deploy/systemd/*.service; do
  name=$(basename "$unit")
  bin=$(sed -n 's#^ExecStart=/usr/local/bin/\([a-z-]*\).*#\1#p' "$unit")
  [ -x "$bin_dir/$bin" ] || fail "$unit runs $bin, which is not a built binary ($bin_dir/$bin)"
  # verify checks ExecStart exists: point it at the debug build.
  sed "s#/usr/local/bin/$bin#$bin_dir/$bin#" "$unit" >"$tmp/$name"
  if ! out=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) || [ -n "$out" ]; then
    fail "systemd-analyze verify $unit: $out"
  fi
  score=$(systemd-analyze security --offline=yes "$tmp/$name" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
  [ -n "$score" ] || fail "systemd-analyze security $unit gave no score"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 3.0 else 1)' "$score" ||
    fail "$unit: exposure $score > 3.0 (systemd-analyze security --offline=yes)"
  echo "$unit: verify clean, exposure $score"
done

# --- Names the programs know ----------------------------------------------------------
help="$tmp/help.txt"
{
  "$bin_dir/headroom-exporter" --help
  "$bin_dir/headroom-sidecar" serve --help
  "$bin_dir/headroom-sidecar" run --help
} >"$help"
# Set as `name: HEADROOM_X` (Kubernetes env) or `HEADROOM_X=` (systemd Environment=, ENV).
vars=$(grep -rhoE '(name: HEADROOM_[A-Z_]+|HEADROOM_[A-Z_]+=)' deploy | grep -oE 'HEADROOM_[A-Z_]+' | sort -u)
[ -n "$vars" ] || fail "no HEADROOM_* variable found in deploy/ (pattern broken?)"
for v in $vars; do
  grep -q "env: $v=" "$help" || fail "deploy/ sets $v, which neither binary reads (see --help)"
done
echo "deploy checks passed ($(echo "$vars" | wc -w) HEADROOM_* variables known to the binaries)"
