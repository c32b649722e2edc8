//! `--web-config`: TLS and basic auth on the real binary, spoken to by real clients (`curl`
//! and Prometheus itself) with certificates made by `openssl` at test time; and bad files,
//! whose every problem must be named before the exporter exits 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../webconfig/tests/support/pki.rs"]
mod pki;

use common::*;
use pki::Pki;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "s3cret pass";

/// The exporter on the fake GPU with `--web-config FILE` (through the environment when
/// `env` is set); waits for its `address=` line, which gives the scheme too.
fn start_web(web_config: &Path, env: bool) -> (Exporter, String) {
    let scenario = repo_root().join("scenarios/h100-mps-wan22.toml");
    let mut cmd = Command::new(exporter_bin());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "200ms",
        "--simulate",
    ])
    .arg(&scenario)
    .arg("--nvml-lib")
    .arg(fake_nvml())
    .env("HEADROOM_KUBELET_SOCKET", "none")
    .env_remove("HEADROOM_FAKE_SCENARIO")
    .env_remove("HEADROOM_FAKE_FREEZE_AT");
    if env {
        cmd.env("HEADROOM_WEB_CONFIG", web_config);
    } else {
        cmd.arg("--web-config").arg(web_config);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" address=\"").nth(1) {
                let url = rest.split('"').next().unwrap().to_string();
                let _ = tx.send(url);
            }
            sink.lock().unwrap().push(line);
        }
    });
    let Ok(url) = rx.recv_timeout(Duration::from_secs(20)) else {
        let status = child.try_wait();
        panic!(
            "no address line; status {status:?}; stderr {:#?}",
            lines.lock().unwrap()
        );
    };
    let (scheme, rest) = url.split_once("://").unwrap();
    let addr: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
    let e = Exporter {
        child,
        addr,
        stderr: lines,
    };
    (e, scheme.to_string())
}

/// One `curl` request; returns (HTTP status, headers, body). Status 0: no HTTP response
/// (the TLS handshake failed).
fn curl(args: &[&str], url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "-o", "-"])
        .args(args)
        .arg(url)
        .output()
        .expect("`curl` is needed (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return (
            0,
            String::new(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// curl arguments for a client that trusts the test CA and presents `client` (if any).
fn tls_args(pki: &Pki, client: Option<&str>) -> Vec<String> {
    let mut v = vec!["--cacert".to_string(), pki.p("ca.crt")];
    if let Some(c) = client {
        v.extend([
            "--cert".into(),
            pki.p(&format!("{c}.crt")),
            "--key".into(),
            pki.p(&format!("{c}.key")),
        ]);
    }
    v
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits until `GET url` with `args` is 200 (the first collection is done); returns the
/// body.
fn wait_200(args: &[&str], url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = curl(args, url);
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "{url}: last {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_config(pki: &Pki, name: &str, text: &str) -> std::path::PathBuf {
    let path = pki.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// CPU seconds the process has used (utime + stime from /proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after_comm` starts at field 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn tls_client_certificates_and_basic_auth_with_curl() {
    let pki = Pki::new("exporter-curl");
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let config = write_config(
        &pki,
        "web.yml",
        &format!(
            "tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  prometheus: '{hash}'
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
"
        ),
    );
    let (e, scheme) = start_web(&config, false);
    assert_eq!(scheme, "https");
    let base = format!("https://{}", e.addr);
    let metrics = format!("{base}/metrics");
    let with_cert = tls_args(&pki, Some("client"));
    let user = format!("prometheus:{PASSWORD}");
    let mut good = with_cert.clone();
    good.extend(["-u".to_string(), user.clone()]);

    let body = wait_200(&refs(&good), &metrics);
    assert!(body.contains("headroom_exporter_collections_total") && body.ends_with("# EOF\n"));
    let (_, head, _) = curl(&refs(&good), &metrics);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{head}"
    );

    // Wrong password, no password, unknown user: 401 with the challenge.
    for creds in [
        Some("prometheus:wrong".to_string()),
        None,
        Some(format!("nobody:{PASSWORD}")),
    ] {
        let mut args = with_cert.clone();
        if let Some(c) = &creds {
            args.extend(["-u".to_string(), c.clone()]);
        }
        for path in ["/metrics", "/", "/nowhere"] {
            let (status, head, _) = curl(&refs(&args), &format!("{base}{path}"));
            assert_eq!(status, 401, "{creds:?} {path}: {head}");
            assert!(head.contains("www-authenticate: Basic"), "{head}");
        }
    }
    // The probes need no password (the client certificate still).
    for path in ["/healthz", "/readyz"] {
        let (status, _, body) = curl(&refs(&with_cert), &format!("{base}{path}"));
        assert_eq!(status, 200, "{path}: {body}");
    }

    // No client certificate, or one from another CA: no HTTP at all.
    for client in [None, Some("rogue")] {
        let (status, _, err) = curl(
            &refs(&[tls_args(&pki, client), vec!["-u".into(), user.clone()]].concat()),
            &metrics,
        );
        assert_eq!(status, 0, "client cert {client:?} accepted");
        assert!(!err.is_empty());
    }
    // A client that does not trust the server's CA refuses it.
    let (status, _, err) = curl(
        &[
            "--cert",
            &pki.p("client.crt"),
            "--key",
            &pki.p("client.key"),
        ],
        &metrics,
    );
    assert_eq!(status, 0);
    assert!(err.contains("certificate"), "{err}");

    // Plain HTTP to the TLS port: a readable 400, not garbage.
    let (status, _, body) = curl(&[], &format!("http://{}/metrics", e.addr));
    assert_eq!(status, 400);
    assert!(body.contains("https://"), "{body}");

    // Still serving after all of that, and verified credentials are cached: 30 scrapes
    // cost less CPU than one bcrypt of cost 10.
    let pid = e.child.id();
    let t0 = cpu_seconds(pid);
    for _ in 0..30 {
        let (status, _, _) = curl(&refs(&good), &metrics);
        assert_eq!(status, 200);
    }
    let thirty = cpu_seconds(pid) - t0;
    let bcrypt_cost = {
        let t = Instant::now();
        assert!(bcrypt::verify(PASSWORD, &hash).unwrap());
        t.elapsed().as_secs_f64()
    };
    assert!(
        thirty < bcrypt_cost,
        "30 authenticated scrapes took {thirty:.3}s CPU, one bcrypt takes {bcrypt_cost:.3}s"
    );
}

#[test]
fn basic_auth_over_plain_http_from_the_environment() {
    let pki = Pki::new("exporter-plain");
    let hash = bcrypt::hash(PASSWORD, 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let config = write_config(
        &pki,
        "web.yml",
        &format!("basic_auth_users:\n  alice: '{hash}'\n"),
    );
    let (e, scheme) = start_web(&config, true);
    assert_eq!(scheme, "http");
    let url = format!("http://{}/metrics", e.addr);
    wait_200(&["-u", &format!("alice:{PASSWORD}")], &url);
    let (status, head, _) = curl(&["-u", "alice:nope"], &url);
    assert_eq!(status, 401, "{head}");
    let (status, _, _) = http(e.addr, "GET", "/metrics");
    assert_eq!(status, 401);
    let (status, head, body) = http(e.addr, "HEAD", "/metrics");
    assert_eq!((status, body.as_str()), (401, ""), "{head}");
    assert_eq!(http(e.addr, "GET", "/healthz").0, 200);
}

/// A connection that never finishes its handshake neither blocks others nor stays open
/// past the handshake timeout; garbage instead of a ClientHello is dropped at once.
#[test]
fn stalled_and_garbage_handshakes() {
    let pki = Pki::new("exporter-stall");
    let config = write_config(
        &pki,
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let (e, _) = start_web(&config, false);
    let url = format!("https://{}/healthz", e.addr);
    let ca = tls_args(&pki, None);
    let started = Instant::now();
    let mut silent = TcpStream::connect(e.addr).unwrap();
    let mut partial = TcpStream::connect(e.addr).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut garbage = TcpStream::connect(e.addr).unwrap();
    garbage.write_all(&[0u8; 64]).unwrap();

    // Others are served meanwhile.
    assert_eq!(curl(&refs(&ca), &url).0, 200);
    // min_version TLS13: a TLS 1.2-only client is refused.
    let (status, _, err) = curl(&[refs(&ca), vec!["--tls-max", "1.2"]].concat(), &url);
    assert_eq!(status, 0, "TLS 1.2 accepted");
    assert!(!err.is_empty());

    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(garbage.read(&mut buf), Ok(0) | Err(_)),
        "garbage connection kept open"
    );

    for s in [&mut silent, &mut partial] {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0))
                || n.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "stalled handshake: {n:?}"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "stalled handshakes closed after {waited:?} (the timeout is 10s)"
    );
    assert_eq!(curl(&refs(&ca), &url).0, 200);
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let pki = Pki::new("exporter-prom");
    let hash = bcrypt::hash(PASSWORD, 10).unwrap();
    let config = write_config(
        &pki,
        "web.yml",
        &format!(
            "tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  prometheus: '{hash}'
"
        ),
    );
    let (e, _) = start_web(&config, false);
    // Three jobs against the one exporter: right credentials, a wrong password, and the
    // right password without a client certificate.
    let job = |name: &str, password: &str, client: bool| {
        let cert = if client {
            format!(
                "\n      cert_file: {}\n      key_file: {}",
                pki.p("client.crt"),
                pki.p("client.key")
            )
        } else {
            String::new()
        };
        format!(
            "  - job_name: {name}
    scheme: https
    tls_config:
      ca_file: {ca}{cert}
    basic_auth:
      username: prometheus
      password: '{password}'
    static_configs:
      - targets: ['{addr}']
",
            ca = pki.p("ca.crt"),
            addr = e.addr
        )
    };
    let prom_yml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}",
        job("good", PASSWORD, true),
        job("wrong_password", "guess", true),
        job("no_client_cert", PASSWORD, false)
    );
    let prom = Prometheus::start(&pki.path("."), &prom_yml);
    let addr: SocketAddr = prom.addr;

    let value = |r: &[serde_json::Value], job: &str| {
        r.iter()
            .find(|s| s["metric"]["job"] == job)
            .and_then(|s| s["value"][1].as_str().map(str::to_string))
    };
    // Every job scraped at least twice (so `up` is settled), then: only `good` is up.
    let up = query_until(addr, "count_over_time(up[1m]) >= 2", |r| r.len() == 3);
    assert_eq!(up.len(), 3);
    let up = query_until(addr, "up", |r| r.len() == 3);
    assert_eq!(value(&up, "good").as_deref(), Some("1"), "{up:?}");
    assert_eq!(value(&up, "wrong_password").as_deref(), Some("0"), "{up:?}");
    assert_eq!(value(&up, "no_client_cert").as_deref(), Some("0"), "{up:?}");
    let series = query_until(addr, "headroom_exporter_collections_total", |r| {
        !r.is_empty()
    });
    assert!(
        series.iter().all(|s| s["metric"]["job"] == "good"),
        "{series:?}"
    );
}

/// Runs the binary with `args` and a web-config; it must exit 2 before listening, with
/// each needle on stderr.
fn rejected(args: &[&str], needles: &[&str]) {
    let out = Command::new(exporter_bin())
        .args(args)
        .env("HEADROOM_KUBELET_SOCKET", "none")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("listening"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not reported:\n{err}");
    }
    assert_eq!(
        err.lines().count(),
        needles.len(),
        "one line per problem:\n{err}"
    );
}

#[test]
fn bad_web_configs_exit_2_naming_each_problem() {
    let pki = Pki::new("exporter-bad");
    let unknown = write_config(
        &pki,
        "unknown.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_allowed_sans: [a]\nbasic_auth: {}\n",
    );
    rejected(
        &[
            "--web-config",
            unknown.to_str().unwrap(),
            "--interval",
            "1ms",
        ],
        &[
            "--interval/HEADROOM_INTERVAL",
            "unknown.yml: basic_auth: unknown field",
            "unknown.yml: tls_server_config.client_allowed_sans: not supported",
        ],
    );
    let missing = write_config(
        &pki,
        "missing.yml",
        "tls_server_config:\n  cert_file: gone.crt\n  key_file: /nonexistent/gone.key\n",
    );
    rejected(
        &["--web-config", missing.to_str().unwrap()],
        &[
            &format!(
                "missing.yml: tls_server_config.cert_file: cannot read {}",
                pki.p("gone.crt")
            ),
            "missing.yml: tls_server_config.key_file: cannot read /nonexistent/gone.key",
        ],
    );
    let hashes = write_config(
        &pki,
        "hashes.yml",
        "basic_auth_users:\n  alice: plaintext-password\n  bob: '$2y$10$tooshort'\n",
    );
    rejected(
        &["--web-config", hashes.to_str().unwrap()],
        &[
            "hashes.yml: basic_auth_users.alice: not a bcrypt hash",
            "hashes.yml: basic_auth_users.bob: not a bcrypt hash",
        ],
    );
    rejected(
        &["--web-config", "/nonexistent/web.yml"],
        &["--web-config/HEADROOM_WEB_CONFIG: /nonexistent/web.yml: cannot read the file"],
    );
}
