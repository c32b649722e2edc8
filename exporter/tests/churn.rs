//! Real `fake-gpu-job` processes come and go on the fake GPU while the exporter runs:
//! a pid that leaves disappears from the next scrape (no stale series), and a client that
//! dies at its MPS limit is counted as an inferred OOM (a clean exit is not).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"
driver_version = "580.95.05"
[clock]
time_scale = 1.0
[[workload]]
name = "short"
timeline = [[0, "0"], [0.3, "2GiB"], [1.5, "2GiB"]]
[[workload]]
name = "creep"        # sits within 3% of a 16G limit for ~2 s, then outgrows it
timeline = [[0, "0"], [0.5, "15.5GiB"], [2.5, "15.95GiB"], [3, "20GiB"]]
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-0c0c0c0c-1111-2222-3333-444455556666"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mps = true
"#;

struct Env {
    dir: std::path::PathBuf,
    scenario: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("headroom-churn-{}", std::process::id()));
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let scenario = dir.join("churn.toml");
        std::fs::write(&scenario, SCENARIO).unwrap();
        Self {
            dir,
            scenario,
            state,
        }
    }

    fn job(&self, workload: &str, limit: Option<&str>) -> std::process::Child {
        let bin = exporter_bin().parent().unwrap().join("fake-gpu-job");
        let mut cmd = Command::new(bin);
        cmd.args(["--workload", workload])
            .env("HEADROOM_FAKE_SCENARIO", &self.scenario)
            .env("HEADROOM_FAKE_STATE_DIR", &self.state)
            .env("HEADROOM_WORKLOAD", workload)
            .env_remove("HEADROOM_FAKE_FREEZE_AT")
            .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(l) = limit {
            cmd.env("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", l);
        }
        cmd.spawn()
            .expect("fake-gpu-job (built with the workspace)")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pids(text: &str) -> Vec<String> {
    samples(text, "headroom_process_memory_used_bytes")
        .into_iter()
        .filter_map(|(l, _)| label(&l, "pid").map(str::to_string))
        .collect()
}

fn wait_for(e: &Exporter, what: &str, mut ok: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(e.addr, "/metrics");
        if ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn departed_pids_vanish_and_limit_deaths_count_as_oom() {
    let env = Env::new();
    let e = start(
        &[
            "--simulate",
            env.scenario.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--interval",
            "100ms",
        ],
        &[("HEADROOM_FAKE_STATE_DIR", env.state.to_str().unwrap())],
    );
    metrics_after(&e, 1);

    // A job that finishes normally: seen while it runs, gone right after it exits.
    let mut short = env.job("short", None);
    let pid = short.id().to_string();
    wait_for(&e, "the short job's series", |t| pids(t).contains(&pid));
    let status = short.wait().unwrap();
    assert!(status.success(), "short job failed: {status:?}");
    let exited = Instant::now();
    wait_for(&e, "the short job's series to go", |t| {
        !pids(t).contains(&pid)
    });
    assert!(
        exited.elapsed() < Duration::from_secs(2),
        "stale for {:?}",
        exited.elapsed()
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        let (_, body) = get(e.addr, "/metrics");
        assert!(!pids(&body).contains(&pid), "pid {pid} came back");
        assert!(
            !body.contains("workload=\"short\",source="),
            "a clean exit counted as OOM:\n{body}"
        );
    }

    // A client that creeps up to its 16G MPS limit and dies there.
    let creep = env.job("creep", Some("0=16G"));
    let pid = creep.id().to_string();
    let text = wait_for(&e, "the creeping job's limit", |t| {
        samples(t, "headroom_mps_client_memory_limit_bytes")
            .iter()
            .any(|(l, v)| label(l, "pid") == Some(&pid) && *v == 16.0 * (1u64 << 30) as f64)
    });
    assert!(text.contains("workload=\"creep\""));
    let out = creep.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the job must fail on its limit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CUDA out of memory"), "{stderr}");
    let text = wait_for(&e, "an inferred OOM", |t| {
        samples(t, "headroom_oom_events_total")
            .iter()
            .any(|(l, v)| {
                label(l, "workload") == Some("creep")
                    && label(l, "source") == Some("inferred")
                    && *v == 1.0
            })
    });
    assert!(!pids(&text).contains(&pid));
}
