//! Test support: runs the real `headroom-exporter` binary (on the fake NVML built alongside)
//! and talks HTTP to it over loopback with a minimal client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_headroom-exporter"))
}

/// The fake NVML cdylib, built by `cargo build --workspace` (nextest builds it with the
/// workspace). Found beside the exporter binary.
pub fn fake_nvml() -> PathBuf {
    let lib = exporter_bin()
        .parent()
        .unwrap()
        .join("libheadroom_fake_nvml.so");
    assert!(
        lib.is_file(),
        "{} missing: build the workspace first (cargo build --workspace)",
        lib.display()
    );
    lib
}

/// Headroom's fake DCGM library, built next to the exporter.
pub fn fake_dcgm() -> PathBuf {
    let lib = exporter_bin()
        .parent()
        .unwrap()
        .join("libheadroom_fake_dcgm.so");
    assert!(
        lib.is_file(),
        "{} missing: build the workspace first (cargo build --workspace)",
        lib.display()
    );
    lib
}

/// A running exporter, killed on drop.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the exporter with `args` (plus `--listen 127.0.0.1:0`) and `envs`, and waits
/// until it says where it listens.
pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Exporter {
    let mut cmd = Command::new(exporter_bin());
    cmd.args(["--listen", "127.0.0.1:0"]).args(args);
    cmd.env_remove("HEADROOM_FAKE_SCENARIO")
        .env_remove("HEADROOM_FAKE_FREEZE_AT")
        // Pod attribution is on by default on a Kubernetes node; tests that want it pass
        // --kubelet-socket (flags win over the environment).
        .env("HEADROOM_KUBELET_SOCKET", "none");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exporter");
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Text (`address="http://…"`) or JSON (`"address":"http://…"`) log line.
            let rest = line
                .split("address=\"http://")
                .nth(1)
                .or_else(|| line.split("\"address\":\"http://").nth(1));
            if let Some(rest) = rest {
                let addr = rest.split('/').next().unwrap().to_string();
                let _ = tx.send(addr);
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => a.parse().unwrap(),
        Err(_) => {
            let status = child.try_wait();
            panic!(
                "exporter did not report its address; status {status:?}; stderr: {:#?}",
                lines.lock().unwrap()
            );
        }
    };
    Exporter {
        child,
        addr,
        stderr: lines,
    }
}

/// A minimal HTTP/1.1 request; `None` when the server cannot be reached.
pub fn try_http(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Some((status, head.to_string(), body.to_string()))
}

/// A minimal HTTP/1.1 request that must reach the server; returns (status, headers, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    try_http(addr, method, path)
        .unwrap_or_else(|| panic!("{method} http://{addr}{path}: unreachable"))
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http(addr, "GET", path);
    (status, body)
}

/// Waits until `/metrics` shows at least `cycles` completed collections; returns the body.
pub fn metrics_after(e: &Exporter, cycles: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(e.addr, "/metrics");
        if status == 200 {
            let n = body
                .lines()
                .find_map(|l| l.strip_prefix("headroom_exporter_collections_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if n >= cycles as f64 {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {cycles} collections in time; stderr: {:#?}",
            e.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Families whose values change from run to run (timings, counters of cycles).
pub const UNSTABLE: [&str; 3] = [
    "headroom_collector_duration_seconds",
    "headroom_exporter_snapshot_age_seconds",
    "headroom_exporter_collections_total",
];

/// The exposition with unstable series removed (their HELP/TYPE/UNIT lines too).
pub fn stable(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .or_else(|| line.strip_prefix("# UNIT "))
            .unwrap_or(line);
        let metric = name.split([' ', '{']).next().unwrap_or("");
        let family_of = |u: &str| metric == u || metric == u.trim_end_matches("_total");
        if UNSTABLE.iter().any(|u| family_of(u)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Parses one sample line into (name, labels, value).
/// Label pairs of one sample.
pub type LabelPairs = Vec<(String, String)>;

pub fn parse_sample(line: &str) -> Option<(String, LabelPairs, f64)> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => {
            let body = rest.strip_suffix('}')?;
            let mut labels = Vec::new();
            for pair in split_labels(body) {
                let (k, v) = pair.split_once('=')?;
                labels.push((k.to_string(), v.trim_matches('"').to_string()));
            }
            (n.to_string(), labels)
        }
        None => (series.to_string(), Vec::new()),
    };
    Some((name, labels, value))
}

fn split_labels(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            '\\' if in_quotes => escaped = !escaped,
            '"' if !escaped => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    if start < body.len() {
        parts.push(&body[start..]);
    }
    parts
}

/// Samples of one metric name.
pub fn samples(text: &str, name: &str) -> Vec<(LabelPairs, f64)> {
    text.lines()
        .filter_map(parse_sample)
        .filter(|(n, _, _)| n == name)
        .map(|(_, l, v)| (l, v))
        .collect()
}

pub fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A free loopback TCP port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus (Debian package `prometheus`; scripts/test.sh installs it) on a free
/// loopback port, its data and log in `dir`; killed on drop.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Writes `config` (YAML) to `dir/prometheus.yml`, checks it with `promtool`, starts
    /// Prometheus on it and waits until it is ready.
    pub fn start(dir: &Path, config: &str) -> Self {
        let yml = dir.join("prometheus.yml");
        std::fs::write(&yml, config).unwrap();
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(&yml)
            .output()
            .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
        assert!(
            check.status.success(),
            "promtool check config: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus; scripts/test.sh installs it)");
        let prom = Prometheus {
            child,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while try_http(prom.addr, "GET", "/-/ready").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "Prometheus did not become ready: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prom
    }
}

/// `/api/v1/query` result vector, once `done` accepts it (or panics after 60 s).
pub fn query_until(
    prom: SocketAddr,
    q: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let encoded: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) =
            try_http(prom, "GET", &format!("/api/v1/query?query={encoded}")).unwrap_or_default();
        if status == 200 {
            let v: serde_json::Value =
                serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null);
            if let Some(r) = v["data"]["result"].as_array().filter(|r| done(r)) {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus returned nothing acceptable for {q} (last: {status} {body})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
