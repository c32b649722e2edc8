//! Test support: a time-scaled copy of a shipped scenario, the real `headroom-sidecar serve`
//! on the fake NVML, and real `fake-gpu-job` processes launched directly or through
//! `headroom-sidecar run`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn sidecar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_headroom-sidecar"))
}

pub fn target_bin(name: &str) -> PathBuf {
    let p = sidecar_bin().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// A private world: scenario copy, fake-GPU state dir, sidecar state dir and socket.
pub struct World {
    pub dir: PathBuf,
    pub scenario: PathBuf,
    pub fake_state: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub daemon: Option<Child>,
    pub daemon_log: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl World {
    /// `scenarios/h100-mps-wan22.toml` played `time_scale` times faster, with only the MPS
    /// server as a static process (the jobs under test are the only clients).
    pub fn h100(tag: &str, time_scale: f64) -> Self {
        let dir = std::env::temp_dir().join(format!("headroom-sc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text =
            std::fs::read_to_string(repo_root().join("scenarios/h100-mps-wan22.toml")).unwrap();
        let text = text.replace("time_scale = 1.0", &format!("time_scale = {time_scale}"));
        let mut parts = text.split("[[gpu.process]]");
        let mut out = parts.next().unwrap().to_string();
        for p in parts.filter(|p| p.contains("nvidia-cuda-mps-server")) {
            out.push_str("[[gpu.process]]");
            out.push_str(p);
        }
        assert!(out.contains(&format!("time_scale = {time_scale}")));
        let scenario = dir.join("scenario.toml");
        std::fs::write(&scenario, out).unwrap();
        let fake_state = dir.join("fake");
        std::fs::create_dir_all(&fake_state).unwrap();
        Self {
            scenario,
            fake_state,
            state: dir.join("state"),
            socket: dir.join("sidecar.sock"),
            daemon: None,
            daemon_log: dir.join("daemon.log"),
            dir,
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HEADROOM_FAKE_SCENARIO", &self.scenario)
            .env("HEADROOM_FAKE_STATE_DIR", &self.fake_state)
            .env_remove("HEADROOM_FAKE_FREEZE_AT")
            .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
            .env_remove("CUDA_VISIBLE_DEVICES");
    }

    pub fn start_daemon(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(&self.daemon_log).unwrap();
        let mut cmd = Command::new(sidecar_bin());
        cmd.args(["serve", "--simulate"])
            .arg(&self.scenario)
            .args(["--nvml-lib"])
            .arg(target_bin("libheadroom_fake_nvml.so"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--metrics-listen", "127.0.0.1:0", "--interval", "100ms"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log);
        self.env(&mut cmd);
        self.daemon = Some(cmd.spawn().expect("spawn daemon"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&self.daemon_log)
            .unwrap_or_default()
            .contains("headroom-sidecar serving")
        {
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                self.log()
            );
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.daemon_log).unwrap_or_default()
    }

    /// A fake job started directly (no admission control).
    pub fn job(&self, workload: &str, extra: &[&str]) -> Child {
        let mut cmd = Command::new(target_bin("fake-gpu-job"));
        cmd.args(["--workload", workload])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.env(&mut cmd);
        cmd.spawn().unwrap()
    }

    /// A fake job launched through `headroom-sidecar run`.
    pub fn run(&self, workload: &str, run_args: &[&str], job_args: &[&str]) -> Child {
        let mut cmd = Command::new(sidecar_bin());
        cmd.arg("run")
            .arg("--socket")
            .arg(&self.socket)
            .args(["--workload", workload])
            .args(run_args)
            .arg("--");
        cmd.arg(target_bin("fake-gpu-job"))
            .args(["--workload", workload])
            .args(job_args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.env(&mut cmd);
        cmd.spawn().unwrap()
    }

    /// `headroom-sidecar profiles ...`
    pub fn profiles(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(sidecar_bin());
        cmd.arg("profiles")
            .arg("--socket")
            .arg(&self.socket)
            .args(args);
        self.env(&mut cmd);
        cmd.output().unwrap()
    }
}

/// Waits for children started at `t0`; returns each output and the makespan.
pub fn finish_all(t0: Instant, children: Vec<Child>) -> (Vec<Output>, Duration) {
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    (outs, t0.elapsed())
}

pub fn is_oom(o: &Output) -> bool {
    String::from_utf8_lossy(&o.stderr).contains("CUDA out of memory")
}

/// The daemon's metrics address, from its start-up log line.
pub fn metrics_addr(log: &str) -> std::net::SocketAddr {
    let rest = log
        .split("metrics=\"http://")
        .nth(1)
        .expect("metrics address in the log");
    rest.split('/').next().unwrap().parse().unwrap()
}

/// `GET /metrics` of the daemon.
pub fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Unix-time stamp (`ts=`) of the first log line containing all of `needles`.
pub fn log_ts(log: &str, needles: &[&str]) -> Option<f64> {
    log.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.strip_prefix("ts="))
        .and_then(|t| t.parse().ok())
}
