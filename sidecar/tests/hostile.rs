//! Hostile HTTP against the real daemon's two listeners, the admission API on the unix socket
//! and metrics/health on TCP (issue 7, "Hostile input"): malformed requests get 400/431 and
//! the daemon keeps serving; oversized bodies get 413 without its memory growing; slowloris
//! clients (trickled or silent headers, or a body that never comes) are cut off within the
//! header/body timeouts while other clients keep being served; connections beyond the limit
//! wait in the kernel's backlog instead of costing the daemon descriptors and memory.
//!
//! Limits mirrored from `sidecar/src/http.rs` and `sidecar/src/api.rs` (a binary crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `http::HEADER_TIMEOUT` (and `http::BODY_TIMEOUT`, the same).
const TIMEOUT: Duration = Duration::from_secs(10);
/// `http::MAX_CONNECTIONS` (per listener).
const MAX_CONNECTIONS: usize = 256;
/// `api::MAX_BODY`.
const MAX_BODY: usize = 256 * 1024;
/// Slack on top of a timeout for a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_secs(5);

/// One of the daemon's listeners.
#[derive(Clone, Debug)]
enum Target {
    Api(PathBuf),
    Ops(SocketAddr),
}

trait Conn: Read + Write + Send {
    fn read_timeout(&self, d: Duration);
}

impl Conn for UnixStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

impl Conn for TcpStream {
    fn read_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

impl Target {
    fn connect(&self) -> Box<dyn Conn> {
        match self {
            Target::Api(p) => Box::new(UnixStream::connect(p).unwrap()),
            Target::Ops(a) => Box::new(TcpStream::connect(a).unwrap()),
        }
    }

    /// A request every client of this listener makes.
    fn probe(&self) -> &'static str {
        match self {
            Target::Api(_) => "/v1/status",
            Target::Ops(_) => "/healthz",
        }
    }
}

fn setup(tag: &str) -> (World, Vec<Target>, u32) {
    let mut w = World::h100(tag, 40.0);
    w.start_daemon(&[]);
    let ops = metrics_addr(&w.log());
    let pid = w.daemon.as_ref().unwrap().id();
    let targets = vec![Target::Api(w.socket.clone()), Target::Ops(ops)];
    (w, targets, pid)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Sends `data` (write errors ignored: the daemon may close early) and reads until it closes;
/// returns the status (0 if none), the body and how long the daemon took to close.
fn exchange(t: &Target, data: &[u8]) -> (u16, String, Duration) {
    let t0 = Instant::now();
    let mut s = t.connect();
    s.read_timeout(TIMEOUT + SLACK * 2);
    let _ = s.write_all(data);
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{t:?}: no answer and no close within the timeout: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, t0.elapsed())
}

/// The listener answers its probe with 200 within `within`.
fn served(t: &Target, within: Duration) {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        t.probe()
    );
    let (status, body, took) = exchange(t, req.as_bytes());
    assert_eq!(status, 200, "{t:?}: {body}");
    assert!(took < within, "{t:?}: answered after {took:?}");
}

#[test]
fn malformed_and_oversized_requests_get_4xx_and_memory_stays_bounded() {
    let (w, targets, pid) = setup("hostile-4xx");
    let fds_before = open_fds(pid);
    let big_header = {
        let mut r = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', 300 * 1024));
        r.extend_from_slice(b"\r\n\r\n");
        r
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "header without colon",
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad Content-Length",
            b"POST /v1/admissions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two different Content-Lengths",
            b"POST /v1/admissions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .to_vec(),
            400,
        ),
        (
            "binary noise",
            (0u8..=255).cycle().take(4096).collect::<Vec<u8>>(),
            400,
        ),
        ("300 KiB header", big_header, 431),
    ];
    for t in &targets {
        for (what, data, want) in &cases {
            let (status, _, took) = exchange(t, data);
            assert_eq!(status, *want, "{t:?}: {what}");
            assert!(took < SLACK, "{t:?}: {what}: answered after {took:?}");
            served(t, SLACK);
        }
    }

    // Oversized bodies on the API: 413 from the declared length at once, and from a chunked
    // body as soon as it passes the cap (the rest is never read). 8 MiB follow each request.
    let api = &targets[0];
    let rss_before = rss_kib(pid);
    let junk = vec![b' '; 8 << 20];
    for _ in 0..10 {
        let mut req = format!(
            "POST /v1/admissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            100u64 << 20
        )
        .into_bytes();
        req.extend_from_slice(&junk);
        let (status, body, took) = exchange(api, &req);
        assert_eq!(status, 413, "declared 100 MiB: {body}");
        assert!(body.contains("larger than"), "{body}");
        assert!(took < SLACK, "413 after {took:?}");

        let mut chunked =
            b"POST /v1/admissions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for _ in 0..64 {
            chunked.extend_from_slice(b"20000\r\n");
            chunked.extend(std::iter::repeat_n(b' ', 0x20000));
            chunked.extend_from_slice(b"\r\n");
        }
        let (status, body, took) = exchange(api, &chunked);
        assert_eq!(status, 413, "chunked 8 MiB: {body}");
        assert!(took < SLACK, "413 after {took:?}");
    }
    // The TCP side reads no bodies: a declared oversized one is refused the same way.
    let (status, _, _) = exchange(
        &targets[1],
        format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .as_bytes(),
    );
    assert_eq!(status, 413, "oversized body on the metrics listener");
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        grown < 8 * 1024,
        "RSS grew {grown} KiB while refusing 160 MiB of bodies"
    );
    // Nothing entered the queue, and the daemon still serves both listeners.
    let (status, body, _) = exchange(
        api,
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (st["queued"].as_u64(), st["running"].as_u64()),
        (Some(0), Some(0))
    );
    served(&targets[1], SLACK);
    std::thread::sleep(Duration::from_millis(200));
    assert!(open_fds(pid) <= fds_before + 1, "descriptors leaked");
    drop(w);
}

/// A slow client of `kind` on `t`; returns how long until the daemon closed it.
fn slow_client(t: Target, kind: usize) -> Duration {
    let t0 = Instant::now();
    let mut s = t.connect();
    s.read_timeout(Duration::from_millis(300));
    match kind {
        // Trickles a header byte every 300 ms: a per-read timeout would never fire.
        0 => {
            let _ = s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n");
        }
        // A partial request line, then silence.
        1 => {
            let _ = s.write_all(b"GET /v1/sta");
        }
        // Complete headers, a body that never comes.
        2 => {
            let _ = s.write_all(
                b"POST /v1/admissions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"wor",
            );
        }
        // Connects and says nothing.
        _ => {}
    }
    let mut buf = [0u8; 1024];
    loop {
        assert!(
            t0.elapsed() < TIMEOUT + SLACK,
            "{t:?}: slow client ({kind}) still connected after {:?}",
            t0.elapsed()
        );
        if kind == 0 && s.write_all(b"X").is_err() {
            return t0.elapsed();
        }
        match s.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(n) => {
                // Only the body timeout answers (408) before closing.
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(
                    kind == 2 && text.starts_with("HTTP/1.1 408"),
                    "{t:?}: slow client ({kind}) got {text:?}"
                );
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return t0.elapsed(),
        }
    }
}

#[test]
fn slowloris_clients_are_cut_off_while_others_are_served() {
    let (w, targets, _pid) = setup("hostile-slow");
    let mut clients = Vec::new();
    for t in &targets {
        for i in 0..40 {
            let t = t.clone();
            clients.push(std::thread::spawn(move || slow_client(t, i % 4)));
        }
    }
    // Meanwhile both listeners keep answering, and a real `run` gets through.
    let t0 = Instant::now();
    let mut served_n = 0;
    let job = w.run("ti2v-5b", &["--peak", "36GiB"], &[]);
    while t0.elapsed() < TIMEOUT - Duration::from_secs(2) {
        for t in &targets {
            served(t, Duration::from_secs(3));
            served_n += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = job.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "run during the attack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let closed: Vec<Duration> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let (fastest, slowest) = (closed.iter().min().unwrap(), closed.iter().max().unwrap());
    assert!(
        served_n >= 20,
        "only {served_n} requests served during the attack"
    );
    assert!(
        *fastest >= TIMEOUT / 2,
        "a slow client was closed after {fastest:?}"
    );
    eprintln!(
        "80 slow clients closed after {fastest:?}..{slowest:?}; {served_n} requests and one run served"
    );
    drop(w);
}

#[test]
fn connections_beyond_the_limit_wait_in_the_backlog() {
    let (w, targets, pid) = setup("hostile-conns");
    for t in &targets {
        let fds_before = open_fds(pid);
        let rss_before = rss_kib(pid);
        let idle: Vec<Box<dyn Conn>> = (0..MAX_CONNECTIONS + 40).map(|_| t.connect()).collect();
        std::thread::sleep(Duration::from_secs(1));
        let held = open_fds(pid).saturating_sub(fds_before);
        assert!(
            held <= MAX_CONNECTIONS + 2,
            "{t:?}: daemon holds {held} connections (limit {MAX_CONNECTIONS})"
        );
        assert!(
            held >= MAX_CONNECTIONS - 2,
            "{t:?}: only {held} accepted: the test did not reach the limit"
        );
        let grown = rss_kib(pid).saturating_sub(rss_before);
        assert!(
            grown < 32 * 1024,
            "{t:?}: RSS grew {grown} KiB for {MAX_CONNECTIONS} idle connections"
        );
        // A request now waits for a slot; the idle ones are cut off by the header timeout.
        let t0 = Instant::now();
        served(t, TIMEOUT + SLACK * 2);
        eprintln!(
            "{t:?}: {} connections open, daemon held {held} (+{grown} KiB RSS); a request waited {:?}",
            MAX_CONNECTIONS + 40,
            t0.elapsed()
        );
        drop(idle);
        std::thread::sleep(Duration::from_millis(300));
        served(t, SLACK);
        let deadline = Instant::now() + TIMEOUT + SLACK;
        while open_fds(pid) > fds_before + 1 {
            assert!(
                Instant::now() < deadline,
                "{t:?}: connections not released: {} fds, {fds_before} before",
                open_fds(pid)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(w);
}
