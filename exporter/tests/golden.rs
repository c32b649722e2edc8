//! Golden end-to-end tests: for each shipped scenario, the real exporter on the fake NVML
//! (clock frozen, fixture procfs, `--compat dcgm`) must produce exactly
//! `tests/golden/<scenario>.prom` once unstable series are stripped. Each exposition must also
//! parse with the Python prometheus_client OpenMetrics parser.
//!
//! Regenerate with `HEADROOM_UPDATE_GOLDEN=1 cargo nextest run -p headroom-exporter --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Virtual second the fake clock is frozen at for every golden run.
const FREEZE_AT: &str = "200";

/// Series whose value counts cycles (persistent faults fail every cycle): label sets are
/// compared, values masked.
const VALUE_MASKED: [&str; 1] = ["headroom_collector_errors_total"];

fn normalise(text: &str) -> String {
    stable(text)
        .lines()
        .map(|l| match parse_sample(l) {
            Some((name, _, _)) if VALUE_MASKED.contains(&name.as_str()) => {
                format!("{} <masked>", l.rsplit_once(' ').unwrap().0)
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Runs the Python OpenMetrics parser on `text`; returns its JSON summary.
pub fn python_parse(text: &str) -> serde_json::Value {
    let script = repo_root().join("tests/e2e/check_openmetrics.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the OpenMetrics check (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Python OpenMetrics parser rejected the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn golden(scenario: &str) {
    golden_with(scenario, scenario, &[]);
}

/// Runs `scenario` with `extra` flags and compares with `tests/golden/<name>.prom`.
fn golden_with(scenario: &str, name: &str, extra: &[&str]) {
    let root = repo_root();
    let scenario_path = root.join(format!("scenarios/{scenario}.toml"));
    let procfs = root.join("tests/fixtures/procfs");
    let nvml = fake_nvml();
    let mut args = vec![
        "--simulate",
        scenario_path.to_str().unwrap(),
        "--nvml-lib",
        nvml.to_str().unwrap(),
        "--compat",
        "dcgm",
        "--node-name",
        "golden-node",
        "--procfs",
        procfs.to_str().unwrap(),
        "--interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    let e = start(&args, &[("HEADROOM_FAKE_FREEZE_AT", FREEZE_AT)]);
    let scenario = name;
    // A few cycles, so Xid events delivered to the listener thread are in the snapshot.
    let text = metrics_after(&e, 4);
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics-terminated");
    let summary = python_parse(&text);
    assert!(
        summary.get("headroom_gpu").is_some(),
        "python parser saw no headroom_gpu: {summary}"
    );

    let got = normalise(&text);
    let path = root.join(format!("tests/golden/{scenario}.prom"));
    if std::env::var_os("HEADROOM_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with HEADROOM_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    if got != want {
        let tmp = std::env::temp_dir().join(format!("headroom-golden-{scenario}.prom"));
        std::fs::write(&tmp, &got).unwrap();
        let diff = Command::new("diff")
            .arg("-u")
            .arg(&path)
            .arg(&tmp)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        panic!(
            "{scenario}: exposition differs from {}:\n{}",
            path.display(),
            diff.unwrap_or_default()
        );
    }
}

#[test]
fn golden_h100_mps_wan22() {
    golden("h100-mps-wan22");
}

#[test]
fn golden_h100_mig() {
    golden("h100-mig");
}

#[test]
fn golden_b200_mig() {
    golden("b200-mig");
}

#[test]
fn golden_large() {
    golden("large");
}

/// The A100 MIG scenario on the NVML backend: no GPM on Ampere, so no activity families.
#[test]
fn golden_a100_mig() {
    golden("a100-mig");
}

/// The same A100 with the DCGM backend (Headroom's fake libdcgm): per-instance activity and
/// DRAM from DCGM's profiling fields, matched to the MIG instances through DCGM's hierarchy.
#[test]
fn golden_a100_mig_dcgm() {
    let dcgm = fake_dcgm();
    golden_with(
        "a100-mig",
        "a100-mig-dcgm",
        &["--backend", "dcgm", "--dcgm-lib", dcgm.to_str().unwrap()],
    );
}

#[test]
fn golden_faults() {
    golden("faults");
}
