//! Starting and stopping the `headroom-exporter` under test as a separate process: finds the
//! release binaries beside the bench, passes `--listen 127.0.0.1:0`, reads the address it
//! logs (`address="http://HOST:PORT/metrics"`), drains its stderr so it never blocks, and
//! stops it with SIGTERM (SIGKILL if it does not exit in time).

use crate::http;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The directory the bench binary lives in (`target/release` after `cargo build --release`).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `--exporter` if given, else `headroom-exporter` beside the bench.
pub fn exporter_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| bin_dir().join("headroom-exporter"), Path::to_path_buf)
}

/// `--nvml-lib` if given, else the fake NVML beside the bench.
pub fn fake_lib_path(given: Option<&Path>) -> PathBuf {
    given.map_or_else(
        || bin_dir().join(headroom_core::simulate::FAKE_LIBRARY),
        Path::to_path_buf,
    )
}

/// A running exporter, stopped on drop.
#[derive(Debug)]
pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    log: Arc<Mutex<Vec<String>>>,
}

/// How to start one.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The exporter on the fake NVML with `scenario`, plus `extra` arguments.
    pub fn simulate(binary: PathBuf, scenario: &Path, lib: &Path, extra: &[String]) -> Self {
        let mut args = vec![
            "--simulate".to_string(),
            scenario.display().to_string(),
            "--nvml-lib".to_string(),
            lib.display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        Self {
            binary,
            args,
            env: Vec::new(),
        }
    }
}

impl Exporter {
    /// Starts the exporter and waits until it says where it listens and answers `/readyz`.
    pub fn start(launch: &Launch) -> Result<Self> {
        if !launch.binary.is_file() {
            bail!(
                "{} not found: build it with `cargo build --release -p headroom-exporter` or name it with --exporter",
                launch.binary.display()
            );
        }
        let mut cmd = Command::new(&launch.binary);
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(&launch.args)
            .env_remove("HEADROOM_FAKE_FREEZE_AT")
            .env_remove("HEADROOM_FAKE_STATE_DIR")
            .env_remove(headroom_core::simulate::SCENARIO_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("address=\"http://").nth(1)
                    && let Some(addr) = rest.split('/').next()
                {
                    let _ = tx.send(addr.to_string());
                }
                if let Ok(mut l) = sink.lock() {
                    // Keep the first lines (start-up problems) and never grow without bound.
                    if l.len() < 200 {
                        l.push(line);
                    }
                }
            }
        });
        let mut exporter = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            log,
        };
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => bail!(
                "exporter did not report its address; its stderr:\n{}",
                exporter.log_text()
            ),
        };
        exporter.addr = addr
            .parse()
            .with_context(|| format!("bad address {addr:?}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http::get_once(exporter.addr, "/readyz") {
                break;
            }
            if Instant::now() > deadline {
                bail!("exporter never became ready:\n{}", exporter.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(exporter)
    }

    /// What it wrote on stderr so far (the first 200 lines).
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
