#!/usr/bin/env bash
# Checks alerts/ (issue 5, acceptance 1): `promtool check rules`, `promtool test rules`, every
# alert with a firing and a non-firing test case, severity, annotations and a runbook section
# in docs/alerts.md (tests/ops/check_alert_tests.py), and the Kubernetes PrometheusRule in
# sync (tests/ops/gen_prometheusrule.py). Needs promtool (Debian package prometheus) and
# python3 with PyYAML; scripts/test.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
promtool check rules alerts/*.rules.yml
promtool test rules alerts/tests/*.test.yml
python3 tests/ops/check_alert_tests.py
python3 tests/ops/gen_prometheusrule.py --check
