//! `serve --manage-mps` with a stand-in control program (`tests/fixtures/fake-mps-control`,
//! SOCK_SEQPACKET like the real one): one daemon per managed device with private pipe and
//! log directories, the device's pipe directory handed to admitted processes, a killed daemon
//! started again, `quit` on shutdown, an already running daemon adopted, and bad settings.
//! The real `nvidia-cuda-mps-control` is exercised on the lent GPU (`hw/verify-sidecar.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GPU: &str = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5";

fn fake_control() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-mps-control")
}

/// Pids of the stand-in daemons that `control.log` says are alive, killed on drop.
struct Reaper(PathBuf);

impl Reaper {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
    fn started(&self) -> Vec<i32> {
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix("started pid="))
            .map(|r| r.split(' ').next().unwrap().parse().unwrap())
            .collect()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.started() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn control_up(pipe: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(pipe.join("control")) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() == Some(nix::errno::Errno::EPROTOTYPE as i32),
    }
}

fn until(what: &str, mut f: impl FnMut() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `serve` must have exited with `code`, its stderr naming `needle`.
fn refused(o: &std::process::Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

fn mps_args(root: &Path) -> Vec<String> {
    vec![
        "--manage-mps".into(),
        "--mps-root".into(),
        root.display().to_string(),
        "--mps-control".into(),
        fake_control().display().to_string(),
    ]
}

#[test]
fn one_daemon_per_device_restarted_and_quit_on_shutdown() {
    let mut w = World::h100("mps-manage", 40.0);
    let root = w.dir.join("mps");
    let pipe = root.join(GPU).join("pipe");
    let logs = root.join(GPU).join("log");
    let reaper = Reaper(logs.join("control.log"));
    let args = mps_args(&root);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.start_daemon(&args);

    // Started for the one managed GPU, with its own directories and device.
    assert!(
        w.log().contains("MPS control daemon started"),
        "{}",
        w.log()
    );
    assert!(control_up(&pipe));
    assert_eq!(reaper.started().len(), 1, "{}", reaper.log());
    assert!(
        reaper.log().contains(&format!("device={GPU}")),
        "{}",
        reaper.log()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pipe), 0o755);
    assert_eq!(mode(&logs), 0o750);

    // An admitted process gets the device's pipe directory.
    let out = Command::new(sidecar_bin())
        .arg("run")
        .arg("--socket")
        .arg(&w.socket)
        .args([
            "--workload",
            "env-probe",
            "--peak",
            "1GiB",
            "--",
            "/usr/bin/env",
        ])
        .env_remove("CUDA_MPS_PIPE_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(
        env.contains(&format!("CUDA_MPS_PIPE_DIRECTORY={}", pipe.display())),
        "{env}"
    );

    // Killed: started again within a few sampling rounds.
    let first = reaper.started()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until(
        "a second daemon",
        || reaper.started().len() == 2 && control_up(&pipe),
        || format!("{}\n{}", w.log(), reaper.log()),
    );
    assert!(w.log().contains("starting it again"), "{}", w.log());

    // SIGTERM: the sidecar tells its daemon to quit (nothing admitted runs any more).
    let mut d = w.daemon.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = d.wait().unwrap();
    assert!(status.success(), "{status}: {}", w.log());
    assert!(reaper.log().contains("command quit"), "{}", reaper.log());
    assert!(!control_up(&pipe), "still answering after quit");
    assert!(
        w.log().contains("MPS control daemon stopped"),
        "{}",
        w.log()
    );
}

#[test]
fn a_running_daemon_is_adopted_not_started_twice() {
    let mut w = World::h100("mps-adopt", 40.0);
    let root = w.dir.join("mps");
    let dev = root.join(GPU);
    let (pipe, logs) = (dev.join("pipe"), dev.join("log"));
    for d in [&root, &dev, &pipe, &logs] {
        std::fs::create_dir_all(d).unwrap();
    }
    let reaper = Reaper(logs.join("control.log"));
    let st = Command::new(fake_control())
        .arg("-d")
        .env("CUDA_MPS_PIPE_DIRECTORY", &pipe)
        .env("CUDA_MPS_LOG_DIRECTORY", &logs)
        .status()
        .unwrap();
    assert!(st.success());
    until("the operator's daemon", || control_up(&pipe), String::new);
    let args = mps_args(&root);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.start_daemon(&args);
    assert!(w.log().contains("adopted"), "{}", w.log());
    assert_eq!(reaper.started().len(), 1, "{}", reaper.log());

    // SIGTERM while an admitted process still runs: its daemon is left running.
    let mut busy = Command::new(sidecar_bin())
        .arg("run")
        .arg("--socket")
        .arg(&w.socket)
        .args([
            "--workload",
            "sleeper",
            "--peak",
            "1GiB",
            "--",
            "sleep",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until(
        "the sleeper's start",
        || w.log().contains("workload=\"sleeper\""),
        || w.log(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut d = w.daemon.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(d.wait().unwrap().success(), "{}", w.log());
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(w.log().contains("left running"), "{}", w.log());
    assert!(control_up(&pipe), "the busy device's daemon was stopped");
    assert!(!reaper.log().contains("command quit"), "{}", reaper.log());
}

#[test]
fn bad_mps_settings_are_refused() {
    let w = World::h100("mps-bad", 40.0);
    let serve = |extra: &[&str]| {
        let mut cmd = Command::new(sidecar_bin());
        cmd.args(["serve", "--simulate"])
            .arg(&w.scenario)
            .arg("--nvml-lib")
            .arg(target_bin("libheadroom_fake_nvml.so"))
            .arg("--socket")
            .arg(&w.socket)
            .arg("--state-dir")
            .arg(&w.state)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(extra)
            .env("HEADROOM_FAKE_SCENARIO", &w.scenario)
            .env("HEADROOM_FAKE_STATE_DIR", &w.fake_state);
        cmd.output().unwrap()
    };
    let root = w.dir.join("mps");
    let root_s = root.display().to_string();

    // Both a managed and a fixed pipe directory: a usage error.
    let o = serve(&["--manage-mps", "--mps-pipe-directory", "/tmp/x"]);
    refused(&o, 2, "--mps-pipe-directory");

    // A control program that does not exist: exit 6, naming it.
    let o = serve(&[
        "--manage-mps",
        "--mps-root",
        &root_s,
        "--mps-control",
        "/nonexistent/nvidia-cuda-mps-control",
    ]);
    refused(&o, 6, "/nonexistent/nvidia-cuda-mps-control");

    // A symlinked root is refused.
    let elsewhere = w.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let link = w.dir.join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let fake = fake_control().display().to_string();
    let link_s = link.display().to_string();
    let o = serve(&[
        "--manage-mps",
        "--mps-root",
        &link_s,
        "--mps-control",
        &fake,
    ]);
    refused(&o, 6, "symlinks are refused");

    // A root so long that the control socket could not be bound.
    let long = w.dir.join("x".repeat(90));
    let long_s = long.display().to_string();
    let o = serve(&[
        "--manage-mps",
        "--mps-root",
        &long_s,
        "--mps-control",
        &fake,
    ]);
    refused(&o, 6, "use a shorter --mps-root");
}
