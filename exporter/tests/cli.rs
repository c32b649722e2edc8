//! The real binary's command-line contract: endpoints, status codes, exit codes, graceful
//! SIGTERM, and clear one-line errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn simulated(extra: &[&str]) -> Exporter {
    let scenario = repo_root().join("scenarios/h100-mps-wan22.toml");
    let mut args = vec![
        "--simulate",
        scenario.to_str().unwrap(),
        "--interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    let lib = fake_nvml();
    let mut all: Vec<&str> = args.clone();
    all.extend(["--nvml-lib", lib.to_str().unwrap()]);
    start(&all, &[])
}

#[test]
fn endpoints_and_methods() {
    let e = simulated(&[]);
    metrics_after(&e, 1);
    let (status, head, body) = http(e.addr, "GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(get(e.addr, "/healthz").0, 200);
    assert_eq!(get(e.addr, "/readyz").0, 200);
    assert_eq!(get(e.addr, "/").0, 200);
    assert_eq!(get(e.addr, "/nope").0, 404);
    let (status, head, _) = http(e.addr, "POST", "/metrics");
    assert_eq!(status, 405);
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
    let (status, _, body) = http(e.addr, "HEAD", "/metrics");
    assert_eq!((status, body.as_str()), (200, ""));
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut e = simulated(&[]);
    metrics_after(&e, 1);
    let pid = e.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = e.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let log = e.stderr.lock().unwrap().join("\n");
    assert!(log.contains("SIGTERM received"), "{log}");
}

#[test]
fn json_logs_are_json() {
    let e = simulated(&["--log-format", "json"]);
    metrics_after(&e, 1);
    let lines = e.stderr.lock().unwrap().clone();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|err| panic!("{l:?}: {err}"));
        assert!(v["msg"].is_string() && v["level"].is_string(), "{l}");
    }
}

#[test]
fn missing_nvml_library_is_one_clear_line_and_exit_3() {
    let out = Command::new(exporter_bin())
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("HEADROOM_SIMULATE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/libnvidia-ml.so.1") && err.contains("--simulate"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_env_are_all_reported_with_exit_2() {
    let out = Command::new(exporter_bin())
        .args(["--interval", "10ms", "--compat", "nvsmi"])
        .env("HEADROOM_LISTEN", "not-an-address")
        .env("HEADROOM_COLLECTORS", "process,bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "HEADROOM_LISTEN",
        "HEADROOM_INTERVAL",
        "HEADROOM_COLLECTORS",
        "HEADROOM_COMPAT",
    ] {
        assert!(err.contains(needle), "{needle} not reported:\n{err}");
    }
}

#[test]
fn unreadable_scenario_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("headroom-badscen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "driver_version = 5\n[[gpu]]\nname = \"x\"\n").unwrap();
    let out = Command::new(exporter_bin())
        .args([
            "--simulate",
            bad.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml"),
        "the scenario problem must name the file:\n{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listen_conflict_exits_4() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let scenario = repo_root().join("scenarios/h100-mps-wan22.toml");
    let out = Command::new(exporter_bin())
        .args([
            "--simulate",
            scenario.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn backend_dcgm_without_dcgm_is_one_clear_line_and_exit_3() {
    let scenario = repo_root().join("scenarios/a100-mig.toml");
    let out = Command::new(exporter_bin())
        .args([
            "--simulate",
            scenario.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--backend",
            "dcgm",
            "--dcgm-lib",
            "/nonexistent/libdcgm.so.4",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--backend dcgm") && err.contains("/nonexistent/libdcgm.so.4"),
        "{err}"
    );
}

#[test]
fn backend_auto_falls_back_to_nvml_and_says_why() {
    let e = simulated(&[
        "--backend",
        "auto",
        "--dcgm-lib",
        "/nonexistent/libdcgm.so.4",
    ]);
    let text = metrics_after(&e, 1);
    let lines = e.stderr.lock().unwrap().clone();
    let said: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("engine activity backend"))
        .collect();
    assert_eq!(said.len(), 1, "{lines:#?}");
    assert!(
        said[0].contains("backend=\"nvml\"") && said[0].contains("/nonexistent/libdcgm.so.4"),
        "{}",
        said[0]
    );
    assert!(text.contains("headroom_collector_success{collector=\"gpm\"} 1"));
    assert!(!text.contains("collector=\"dcgm\""));
}

#[test]
fn backend_dcgm_replaces_gpm_with_the_dcgm_collector() {
    let dcgm = fake_dcgm();
    let e = simulated(&["--backend", "dcgm", "--dcgm-lib", dcgm.to_str().unwrap()]);
    let text = metrics_after(&e, 2);
    assert!(
        text.contains("headroom_collector_success{collector=\"dcgm\"} 1"),
        "{text}"
    );
    assert!(!text.contains("collector=\"gpm\""));
    // The H100 scenario's GPU-level activity now comes from DCGM, DRAM included.
    assert!(!samples(&text, "headroom_gpu_graphics_active_ratio").is_empty());
    let lines = e.stderr.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("engine activity backend") && l.contains("backend=\"dcgm\"")),
        "{lines:#?}"
    );
}

/// A failing DCGM shows as `headroom_collector_success{collector="dcgm"} 0` with a reason,
/// and the rest of the scrape (NVML memory, the other collectors) still works.
#[test]
fn failing_dcgm_fails_its_collector_only() {
    let root = repo_root();
    let dir = std::env::temp_dir().join(format!("headroom-dcgm-fault-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("a100-fault.toml");
    let text = std::fs::read_to_string(root.join("scenarios/a100-mig.toml")).unwrap();
    std::fs::write(
        &scenario,
        format!(
            "{text}\n[[fault]]\ncall = \"dcgmEntitiesGetLatestValues\"\nerror = \"NO_PERMISSION\"\n"
        ),
    )
    .unwrap();
    let (nvml, dcgm) = (fake_nvml(), fake_dcgm());
    let e = start(
        &[
            "--simulate",
            scenario.to_str().unwrap(),
            "--nvml-lib",
            nvml.to_str().unwrap(),
            "--backend",
            "dcgm",
            "--dcgm-lib",
            dcgm.to_str().unwrap(),
            "--interval",
            "200ms",
        ],
        &[("HEADROOM_FAKE_FREEZE_AT", "200")],
    );
    let text = metrics_after(&e, 2);
    assert!(
        text.contains("headroom_collector_success{collector=\"dcgm\"} 0"),
        "{text}"
    );
    assert!(text.contains("headroom_collector_success{collector=\"device\"} 1"));
    assert!(
        samples(&text, "headroom_collector_errors_total")
            .iter()
            .any(|(l, v)| label(l, "collector") == Some("dcgm")
                && label(l, "reason") == Some("no_permission")
                && *v >= 1.0),
        "{text}"
    );
    assert_eq!(samples(&text, "headroom_mig_memory_used_bytes").len(), 3);
    assert!(samples(&text, "headroom_mig_graphics_active_ratio").is_empty());
    let lines = e.stderr.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("dcgmEntitiesGetLatestValues")),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
