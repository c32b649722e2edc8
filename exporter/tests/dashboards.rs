//! Issue 5, acceptance 2 and 3: every panel query of every dashboard returns data from a real
//! Prometheus scraping the real programs on the fake GPU.
//!
//! `headroom_dashboards_return_data` starts four exporters (`node-a`: a live H100 under MPS
//! shared with the sidecar; `node-b`: the B200 MIG scenario; `node-c`: the faults scenario,
//! with Xid 13/48/79 and a failing collector; `node-d`: the H100 MPS scenario with the procfs
//! fixtures, so clients carry limits, containers and pods) and `headroom-sidecar serve` on
//! `node-a`, then drives real `fake-gpu-job` processes: a learning run, a job that creeps into
//! its MPS limit outside the sidecar (an inferred OOM), three 30 GiB jobs at once (one has
//! to wait), one that outgrows its learned profile (a confirmed OOM) and one refused as too
//! large. Prometheus relabels `instance` to the node names, as the shipped ServiceMonitor
//! does, and loads `alerts/`: every rule must evaluate without error and the Xid and OOM
//! alerts must fire. Then, for every dashboard in `dashboards/`: each template variable query
//! returns values, and each panel target returns data (a non-NaN sample) with every variable
//! at All, and for at least one combination of concrete variable values.
//!
//! `dcgm_exporter_dashboard_returns_data` runs the panel queries of NVIDIA's dcgm-exporter
//! dashboard (`tests/ops/dcgm-exporter-dashboard.queries`) against exporters in
//! `--compat dcgm` mode the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `$__rate_interval` as Grafana would set it for a 1 s scrape interval (≥ 4 × scrape).
const RATE_INTERVAL: &str = "20s";

/// The live node's GPU: fast virtual time, workloads sized for the runs below.
const NODE_A_SCENARIO: &str = r#"
driver_version = "580.95.05"
[clock]
time_scale = 10.0
[[workload]]
name = "small"
timeline = [[0, "0"], [2, "4GiB"], [10, "4GiB"], [12, "6GiB"], [16, "6GiB"]]
[[workload]]
name = "big"
timeline = [[0, "0"], [2, "30GiB"], [20, "30GiB"]]
[[workload]]
name = "creep"        # sits within 3% of a 16G limit for ~2 s of wall time, then outgrows it
timeline = [[0, "0"], [5, "15.5GiB"], [25, "15.95GiB"], [30, "20GiB"]]
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-0d0a5b0a-1111-4222-8333-444455556666"
memory_total = "81559MiB"
memory_reserved = "480MiB"
sm_count = 132
architecture = "hopper"
mps = true
temperature_c = 55
power_w = 420
graphics_active = 0.6
sm_active = 0.5
tensor_active = 0.3
[[gpu.process]]
pid = 4194399
name = "nvidia-cuda-mps-server"
memory = "66MiB"
contends = false
"#;

// ---------------------------------------------------------------------------------------
// Processes and files, cleaned up on drop (also when an assertion fails).

/// A child process killed (and reaped) on drop.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("headroom-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn target_bin(name: &str) -> PathBuf {
    let p = exporter_bin().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits for every process to exit (polling, so a hung one fails the test instead of
/// hanging it); returns each one's exit code and stderr (read from `logs/NAME.err`).
fn finish(procs: Vec<Proc>, logs: &Path, within: Duration) -> Vec<(String, Option<i32>, String)> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    for mut p in procs {
        let status = loop {
            if let Some(s) = p.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {within:?}; stderr: {}",
                p.name,
                std::fs::read_to_string(logs.join(format!("{}.err", p.name))).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(logs.join(format!("{}.err", p.name))).unwrap_or_default();
        out.push((p.name.clone(), status.code(), err));
    }
    out
}

// ---------------------------------------------------------------------------------------
// A real Prometheus and its HTTP API.

struct Prometheus {
    _server: common::Prometheus,
    addr: SocketAddr,
    /// Unix time it started: the start of every range query.
    start: f64,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over HTTP/1.0 (so the body is never chunked); `None` when unreachable.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

impl Prometheus {
    /// Starts Prometheus on `config` (YAML) in `dir` and waits until it answers.
    fn start(dir: &Path, config: &str) -> Self {
        let server = common::Prometheus::start(dir, config);
        Self {
            addr: server.addr,
            _server: server,
            start: unix_now(),
        }
    }

    /// `data` of a successful API answer; panics with Prometheus' error otherwise.
    fn api(&self, path: &str) -> Value {
        let (status, body) = http_get(self.addr, path)
            .unwrap_or_else(|| panic!("Prometheus unreachable for {path}"));
        let v: Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("{path}: {status} not JSON ({e}): {body}"));
        assert!(
            status == 200 && v["status"] == "success",
            "{path}: {status} {body}"
        );
        v["data"].clone()
    }

    fn instant(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!(
            "/api/v1/query?query={}&time={:.3}",
            encode(expr),
            unix_now()
        ));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    fn range(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!(
            "/api/v1/query_range?query={}&start={:.3}&end={:.3}&step=1",
            encode(expr),
            self.start,
            unix_now()
        ));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Values of `label` on the series `selector` matches since Prometheus started.
    fn label_values(&self, selector: &str, label: &str) -> Vec<String> {
        let data = self.api(&format!(
            "/api/v1/label/{label}/values?match[]={}&start={:.3}&end={:.3}",
            encode(selector),
            self.start,
            unix_now()
        ));
        let mut v: Vec<String> = data
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// Polls the instant query until it returns something (30 s at most).
    fn wait_for(&self, expr: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.instant(expr);
            if !r.is_empty() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has no data for {expr}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Whether a query result holds at least one sample that is a number (not NaN).
fn has_data(result: &[Value]) -> bool {
    let real = |v: &Value| v[1].as_str().is_some_and(|s| s != "NaN");
    result.iter().any(|s| {
        s.get("value").is_some_and(real)
            || s["values"].as_array().is_some_and(|vs| vs.iter().any(real))
    })
}

// ---------------------------------------------------------------------------------------
// Dashboards: template variables and panel targets.

#[derive(Debug, Clone)]
struct Var {
    name: String,
    /// `label_values(SELECTOR, LABEL)`.
    query: String,
    /// Grafana's custom All value; `None`: All is the alternation of every value.
    all_value: Option<String>,
}

#[derive(Debug, Clone)]
struct Target {
    panel: String,
    ref_id: String,
    expr: String,
    instant: bool,
}

struct Board {
    name: String,
    vars: Vec<Var>,
    targets: Vec<Target>,
}

fn collect_targets(panels: &[Value], out: &mut Vec<Target>) {
    for p in panels {
        if let Some(inner) = p["panels"].as_array() {
            collect_targets(inner, out);
        }
        let title = p["title"].as_str().unwrap_or("").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr: {t}"));
            out.push(Target {
                panel: title.clone(),
                ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                expr: expr.to_string(),
                instant: t["instant"] == true && t["range"] != true,
            });
        }
    }
}

/// Reads a Grafana dashboard: its query variables (the `datasource` variable must be a
/// Prometheus data-source variable) and every panel target.
fn load_dashboard(path: &Path) -> Board {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut vars = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        match v["type"].as_str().unwrap() {
            "datasource" => assert_eq!(v["query"], "prometheus", "{name}"),
            "query" => {
                let query = v["query"]
                    .as_str()
                    .or_else(|| v["query"]["query"].as_str())
                    .unwrap_or_else(|| panic!("variable {name} has no query"))
                    .to_string();
                vars.push(Var {
                    name,
                    query,
                    all_value: v["allValue"].as_str().map(str::to_string),
                });
            }
            other => panic!("{}: variable {name} of type {other}", path.display()),
        }
    }
    let mut targets = Vec::new();
    collect_targets(d["panels"].as_array().unwrap(), &mut targets);
    Board {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        vars,
        targets,
    }
}

/// Reads the extracted dcgm-exporter dashboard queries (`var NAME QUERY` and
/// `panel TITLE | EXPR` lines; `#` comments).
fn load_query_list(path: &Path) -> Board {
    let text = std::fs::read_to_string(path).unwrap();
    let mut vars = Vec::new();
    let mut targets = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("var ") {
            let (name, query) = rest.split_once(' ').unwrap();
            vars.push(Var {
                name: name.to_string(),
                query: query.trim().to_string(),
                all_value: None,
            });
        } else if let Some(rest) = line.strip_prefix("panel ") {
            let (title, expr) = rest.split_once(" | ").unwrap();
            targets.push(Target {
                panel: title.to_string(),
                ref_id: "A".into(),
                expr: expr.trim().to_string(),
                instant: false,
            });
        } else {
            panic!("{}: unexpected line {line:?}", path.display());
        }
    }
    Board {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        vars,
        targets,
    }
}

/// Grafana's regex escaping of a variable value inside a PromQL `=~` string.
fn regex_escape(v: &str) -> String {
    let mut s = String::new();
    for c in v.chars() {
        if "\\^$*+?.()|{}[]'".contains(c) {
            s.push_str("\\\\");
        }
        s.push(c);
    }
    s
}

/// Replaces `$name`/`${name}` of the assigned variables and `$__rate_interval`; panics if a
/// `$` is left (a typo'd or unknown variable).
fn substitute(expr: &str, assigned: &[(String, String)], what: &str) -> String {
    let mut out = expr.replace("$__rate_interval", RATE_INTERVAL);
    let mut by_len: Vec<&(String, String)> = assigned.iter().collect();
    by_len.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in by_len {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(
        !out.contains('$'),
        "{what}: unknown variable left in {out:?}"
    );
    out
}

/// Values of a `label_values(SELECTOR, LABEL)` variable query.
fn var_values(
    prom: &Prometheus,
    var: &Var,
    assigned: &[(String, String)],
    what: &str,
) -> Vec<String> {
    let q = substitute(&var.query, assigned, what);
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{what}: only label_values(SELECTOR, LABEL) is supported: {q}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .unwrap_or_else(|| panic!("{what}: label_values needs a selector: {q}"));
    prom.label_values(selector.trim(), label.trim())
}

fn run_target(prom: &Prometheus, t: &Target, expr: &str) -> bool {
    let r = if t.instant {
        prom.instant(expr)
    } else {
        prom.range(expr)
    };
    has_data(&r)
}

/// Checks one dashboard; returns every failure (empty: all good).
fn check_board(prom: &Prometheus, b: &Board) -> Vec<String> {
    let mut failures = Vec::new();
    assert!(!b.targets.is_empty(), "{}: no panel targets", b.name);

    // 1. Every variable at All.
    let mut all: Vec<(String, String)> = Vec::new();
    for v in &b.vars {
        let what = format!("{} variable {} (All)", b.name, v.name);
        let values = var_values(prom, v, &all, &what);
        if values.is_empty() {
            failures.push(format!("{what}: query {:?} returned no values", v.query));
        }
        let value = v.all_value.clone().unwrap_or_else(|| {
            format!(
                "({})",
                values
                    .iter()
                    .map(|x| regex_escape(x))
                    .collect::<Vec<_>>()
                    .join("|")
            )
        });
        all.push((v.name.clone(), value));
    }
    for t in &b.targets {
        let what = format!("{} panel {:?} target {}", b.name, t.panel, t.ref_id);
        let expr = substitute(&t.expr, &all, &what);
        if !run_target(prom, t, &expr) {
            failures.push(format!(
                "{what}: no data with every variable at All: {expr}"
            ));
        }
    }

    // 2. Every combination of concrete values (each variable evaluated with the earlier
    // ones set); each target must return data for at least one.
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for v in &b.vars {
        let mut next = Vec::new();
        for c in &combos {
            let what = format!("{} variable {} with {c:?}", b.name, v.name);
            let values = var_values(prom, v, c, &what);
            if values.is_empty() {
                failures.push(format!("{what}: query {:?} returned no values", v.query));
            }
            for x in values {
                let mut c2 = c.clone();
                c2.push((v.name.clone(), regex_escape(&x)));
                next.push(c2);
            }
        }
        combos = next;
    }
    assert!(
        combos.len() <= 200,
        "{}: {} combinations",
        b.name,
        combos.len()
    );
    for t in &b.targets {
        let what = format!("{} panel {:?} target {}", b.name, t.panel, t.ref_id);
        let hit = combos
            .iter()
            .any(|c| run_target(prom, t, &substitute(&t.expr, c, &what)));
        if !hit {
            failures.push(format!(
                "{what}: no data for any of {} combinations of concrete variable values: {}",
                combos.len(),
                t.expr
            ));
        }
    }
    eprintln!(
        "{}: {} variables, {} targets, {} value combinations checked",
        b.name,
        b.vars.len(),
        b.targets.len(),
        combos.len()
    );
    failures
}

// ---------------------------------------------------------------------------------------
// The programs.

fn exporter_on(scenario: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Exporter {
    let mut args = vec!["--simulate", scenario.to_str().unwrap(), "--nvml-lib"];
    let lib = fake_nvml();
    let lib = lib.to_str().unwrap().to_string();
    args.push(&lib);
    args.extend_from_slice(extra);
    start(&args, envs)
}

/// `headroom-sidecar serve` on the live node; returns it and its metrics address.
fn start_sidecar(dir: &Path, scenario: &Path, fake_state: &Path) -> (Proc, SocketAddr) {
    let log_path = dir.join("sidecar.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(target_bin("headroom-sidecar"))
        .arg("serve")
        .arg("--simulate")
        .arg(scenario)
        .arg("--nvml-lib")
        .arg(fake_nvml())
        .arg("--socket")
        .arg(dir.join("sidecar.sock"))
        .arg("--state-dir")
        .arg(dir.join("sidecar-state"))
        .args(["--metrics-listen", "127.0.0.1:0", "--interval", "100ms"])
        .env("HEADROOM_FAKE_SCENARIO", scenario)
        .env("HEADROOM_FAKE_STATE_DIR", fake_state)
        .env_remove("HEADROOM_FAKE_FREEZE_AT")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn headroom-sidecar");
    let mut p = Proc {
        name: "sidecar".into(),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(rest) = log
            .lines()
            .find(|l| l.contains("headroom-sidecar serving"))
            .and_then(|l| l.split("metrics=\"http://").nth(1))
        {
            let addr = rest.split('/').next().unwrap().parse().unwrap();
            return (p, addr);
        }
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!("sidecar exited {status}: {log}");
        }
        assert!(Instant::now() < deadline, "sidecar did not start: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live node's environment for jobs and `run` clients.
struct Node {
    dir: PathBuf,
    scenario: PathBuf,
    fake_state: PathBuf,
}

impl Node {
    fn command(&self, program: &Path, name: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HEADROOM_FAKE_SCENARIO", &self.scenario)
            .env("HEADROOM_FAKE_STATE_DIR", &self.fake_state)
            .env_remove("HEADROOM_FAKE_FREEZE_AT")
            .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("HEADROOM_WORKLOAD")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(format!("{name}.err"))).unwrap());
        cmd
    }

    /// `headroom-sidecar run [run_args] -- fake-gpu-job job_args`.
    fn run(&self, name: &str, run_args: &[&str], job_args: &[&str]) -> Proc {
        let mut cmd = self.command(&target_bin("headroom-sidecar"), name);
        cmd.arg("run")
            .arg("--socket")
            .arg(self.dir.join("sidecar.sock"))
            .args(["--timeout", "60s"])
            .args(run_args)
            .arg("--")
            .arg(target_bin("fake-gpu-job"))
            .args(job_args);
        Proc {
            name: name.into(),
            child: cmd.spawn().unwrap(),
        }
    }

    /// A fake job started directly, outside admission control.
    fn job(&self, name: &str, envs: &[(&str, &str)], job_args: &[&str]) -> Proc {
        let mut cmd = self.command(&target_bin("fake-gpu-job"), name);
        cmd.args(job_args).envs(envs.iter().copied());
        Proc {
            name: name.into(),
            child: cmd.spawn().unwrap(),
        }
    }
}

fn scrape_config(exporters: &[(&str, SocketAddr)], sidecars: &[(&str, SocketAddr)]) -> String {
    let job = |name: &str, targets: &[(&str, SocketAddr)]| {
        let mut s = format!("  - job_name: {name}\n    static_configs:\n");
        for (node, addr) in targets {
            s.push_str(&format!(
                "      - targets: ['{addr}']\n        labels: {{instance: {node}}}\n"
            ));
        }
        s
    };
    let mut c = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    c.push_str(&format!(
        "rule_files:\n  - {}\n",
        repo_root().join("alerts/headroom.rules.yml").display()
    ));
    c.push_str("scrape_configs:\n");
    c.push_str(&job("headroom-exporter", exporters));
    if !sidecars.is_empty() {
        c.push_str(&job("headroom-sidecar", sidecars));
    }
    c
}

fn expect_exit(results: &[(String, Option<i32>, String)], name: &str, ok: bool, needle: &str) {
    let (_, code, err) = results
        .iter()
        .find(|r| r.0 == name)
        .unwrap_or_else(|| panic!("no result for {name}"));
    assert_eq!(*code == Some(0), ok, "{name}: exit {code:?}, stderr: {err}");
    assert!(
        err.contains(needle),
        "{name}: stderr lacks {needle:?}: {err}"
    );
}

#[test]
fn headroom_dashboards_return_data() {
    let tmp = TempDir::new("dashboards");
    let dir = tmp.0.clone();
    let root = repo_root();
    let node = Node {
        scenario: dir.join("node-a.toml"),
        fake_state: dir.join("fake-state"),
        dir: dir.clone(),
    };
    std::fs::write(&node.scenario, NODE_A_SCENARIO).unwrap();
    std::fs::create_dir_all(&node.fake_state).unwrap();
    let procfs = root.join("tests/fixtures/procfs");
    let procfs = procfs.to_str().unwrap();
    let frozen = [("HEADROOM_FAKE_FREEZE_AT", "200")];

    let node_a = exporter_on(
        &node.scenario,
        &["--interval", "200ms"],
        &[("HEADROOM_FAKE_STATE_DIR", node.fake_state.to_str().unwrap())],
    );
    let node_b = exporter_on(
        &root.join("scenarios/b200-mig.toml"),
        &["--interval", "500ms", "--procfs", procfs],
        &frozen,
    );
    let node_c = exporter_on(
        &root.join("scenarios/faults.toml"),
        &["--interval", "500ms"],
        &frozen,
    );
    let node_d = exporter_on(
        &root.join("scenarios/h100-mps-wan22.toml"),
        &["--interval", "500ms", "--procfs", procfs],
        &frozen,
    );
    let (_sidecar, sidecar_addr) = start_sidecar(&dir, &node.scenario, &node.fake_state);
    let prom = Prometheus::start(
        &dir,
        &scrape_config(
            &[
                ("node-a", node_a.addr),
                ("node-b", node_b.addr),
                ("node-c", node_c.addr),
                ("node-d", node_d.addr),
            ],
            &[("node-a", sidecar_addr)],
        ),
    );
    let up = prom.wait_for("count(up == 1) == 5");
    assert_eq!(up.len(), 1);
    // The admission series must exist before the runs, so rate() sees the admissions.
    prom.wait_for("headroom_admission_capacity_bytes");

    // Phase 1: a learning run through the sidecar, and a job outside it that creeps into
    // its MPS limit and dies there (the exporter infers the OOM).
    let phase1 = vec![
        node.run(
            "learn",
            &["--workload", "small", "--peak", "8GiB"],
            &["--workload", "small"],
        ),
        node.job(
            "creep",
            &[
                ("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=16G"),
                ("HEADROOM_WORKLOAD", "creep"),
            ],
            &["--workload", "creep"],
        ),
    ];
    let r1 = finish(phase1, &dir, Duration::from_secs(30));
    expect_exit(&r1, "learn", true, "");
    expect_exit(&r1, "creep", false, "CUDA out of memory");

    // Phase 2: three 30 GiB jobs at once (only two fit: one waits), a run that outgrows its
    // learned profile (the launcher confirms the OOM), and a request too large for the GPU.
    let big = ["--workload", "big", "--peak", "30GiB"];
    let phase2 = vec![
        node.run("big1", &big, &["--workload", "big"]),
        node.run("big2", &big, &["--workload", "big"]),
        node.run("big3", &big, &["--workload", "big"]),
        node.run(
            "overrun",
            &["--workload", "small"],
            &[
                "--workload",
                "small",
                "--overrun",
                "1.5",
                "--overrun-from",
                "11",
            ],
        ),
        node.run(
            "huge",
            &["--workload", "huge", "--peak", "1TiB"],
            &["--workload", "big"],
        ),
    ];
    let r2 = finish(phase2, &dir, Duration::from_secs(40));
    for b in ["big1", "big2", "big3"] {
        expect_exit(&r2, b, true, "");
    }
    expect_exit(&r2, "overrun", false, "CUDA out of memory");
    expect_exit(&r2, "huge", false, "larger than any managed device");

    // Prometheus has scraped the outcome.
    for q in [
        r#"headroom_oom_events_total{instance="node-a", source="launcher", workload="small"}"#,
        r#"headroom_oom_events_total{instance="node-a", source="inferred", workload="creep"}"#,
        r#"headroom_admission_waits_total{instance="node-a"} > 0"#,
        r#"headroom_admission_rejected_total{reason="too_large"}"#,
        r#"headroom_profile_runs{workload="big"} >= 3"#,
        r#"headroom_xid_errors_total{instance="node-c", xid="79"}"#,
    ] {
        prom.wait_for(q);
    }

    // The alert rules evaluate on real data without error, and the event alerts fire.
    let groups = prom.api("/api/v1/rules")["groups"].clone();
    let mut rules = 0;
    for g in groups.as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            rules += 1;
            assert_eq!(
                r["health"], "ok",
                "rule {} failed on real data: {}",
                r["name"], r["lastError"]
            );
        }
    }
    assert!(rules >= 15, "only {rules} rules loaded");
    let firing = |alert: &str, labels: &[(&str, &str)], state: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let alerts = prom.api("/api/v1/alerts")["alerts"].clone();
            let found = alerts.as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == alert
                    && a["state"] == state
                    && labels.iter().all(|(k, v)| a["labels"][k] == *v)
            });
            if found {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{alert} {labels:?} is not {state}: {alerts}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    firing(
        "HeadroomXidGpuLost",
        &[("instance", "node-c"), ("xid", "79")],
        "firing",
    );
    firing(
        "HeadroomXidResetRequired",
        &[("instance", "node-c"), ("xid", "48")],
        "firing",
    );
    firing(
        "HeadroomOomEvent",
        &[("source", "launcher"), ("workload", "small")],
        "firing",
    );
    firing(
        "HeadroomOomEvent",
        &[("source", "inferred"), ("workload", "creep")],
        "firing",
    );
    firing(
        "HeadroomCollectorFailing",
        &[("instance", "node-c"), ("collector", "device")],
        "pending",
    );

    // Every dashboard, every variable, every panel target.
    let mut boards: Vec<PathBuf> = std::fs::read_dir(root.join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    boards.sort();
    let names: Vec<String> = boards
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "admission.json",
        "gpu-overview.json",
        "mig-instances.json",
        "mps-clients.json",
    ] {
        assert!(names.iter().any(|n| n == want), "dashboards/{want} missing");
    }
    let mut failures = Vec::new();
    for b in &boards {
        failures.extend(check_board(&prom, &load_dashboard(b)));
    }
    assert!(
        failures.is_empty(),
        "{} dashboard queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dcgm_exporter_dashboard_returns_data() {
    let tmp = TempDir::new("dcgm-dashboard");
    let root = repo_root();
    let frozen = [("HEADROOM_FAKE_FREEZE_AT", "200")];
    let compat = ["--compat", "dcgm", "--interval", "500ms", "--node-name"];
    let mps = exporter_on(
        &root.join("scenarios/h100-mps-wan22.toml"),
        &[&compat[..], &["node-a"]].concat(),
        &frozen,
    );
    let mig = exporter_on(
        &root.join("scenarios/b200-mig.toml"),
        &[&compat[..], &["node-b"]].concat(),
        &frozen,
    );
    // Default `instance` labels (host:port): the dashboard's variables see dotted values.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: dcgm-exporter\n    static_configs:\n      - targets: ['{}', '{}']\n",
        mps.addr, mig.addr
    );
    let prom = Prometheus::start(&tmp.0, &config);
    prom.wait_for("count(DCGM_FI_DEV_GPU_TEMP) == 2");
    // Two samples of each series, for the range queries.
    std::thread::sleep(Duration::from_secs(2));
    let board = load_query_list(&root.join("tests/ops/dcgm-exporter-dashboard.queries"));
    assert!(board.targets.len() >= 8, "{} queries", board.targets.len());
    let failures = check_board(&prom, &board);
    assert!(
        failures.is_empty(),
        "{} dcgm-exporter dashboard queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
