//! Load (issue 7): many concurrent `run` requests against one GPU on the real daemon. Every
//! request is answered, the queue is FIFO (no request is admitted before one that arrived
//! earlier, and no queued client's position ever goes up), nothing deadlocks (everything
//! ends within a bound), and the daemon's RSS stays bounded.
//!
//! The clients speak the API directly over the unix socket, each on its own thread, doing
//! exactly what `headroom-sidecar run` does (`sidecar/src/launch.rs`): POST the request, poll
//! its status (20 ms – 1 s, by predicted start; 100 ms when unknown), report the start (this
//! test's own pid stands in for the child) and the end. A thousand real `run` processes
//! (a debug binary each) would measure the machine, not the daemon.
//!
//! CI runs [`CI_CLIENTS`]; `HEADROOM_FULL=1` runs [`FULL_CLIENTS`] (docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rusqlite::{Connection, OpenFlags};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const CI_CLIENTS: usize = 200;
/// Full run (`HEADROOM_FULL=1`).
const FULL_CLIENTS: usize = 1000;
/// Each declares 5 GiB: 15 fit the H100's 79.18 GiB at once, the rest queue.
const PEAK: u64 = 5 << 30;
/// How long an admitted client "runs" before reporting its end.
const HOLD: Duration = Duration::from_millis(20);
/// Daemon RSS growth allowed over its idle baseline, at the peak of the queue.
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn full() -> bool {
    std::env::var("HEADROOM_FULL").is_ok_and(|v| v == "1")
}

/// One request on its own connection, as `headroom-sidecar run`'s client does.
fn call(socket: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: headroom-sidecar\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `launch::poll_after`.
fn poll_after(predicted_start_in_s: Option<f64>) -> Duration {
    match predicted_start_in_s {
        Some(s) if s.is_finite() => Duration::from_secs_f64((s / 4.0).max(0.0))
            .clamp(Duration::from_millis(20), Duration::from_secs(1)),
        _ => Duration::from_millis(100),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// This process's start time in clock ticks (`/proc/self/stat` field 22).
fn own_start_time() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = stat.rsplit_once(") ").unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// What one client saw.
#[derive(Debug)]
struct Seen {
    id: u64,
    polls: usize,
    waited: Duration,
}

fn client(
    socket: PathBuf,
    start: Arc<Barrier>,
    deadline: Instant,
    broken: Arc<AtomicBool>,
) -> Seen {
    start.wait();
    let t0 = Instant::now();
    let (status, body) = call(
        &socket,
        "POST",
        "/v1/admissions",
        &format!(r#"{{"workload":"load-test","peak_bytes":{PEAK}}}"#),
    );
    assert_eq!(status, 201, "POST /v1/admissions: {body}");
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id: u64 = v["id"].as_str().unwrap().parse().unwrap();
    let mut last_position = usize::MAX;
    let mut polls = 0;
    while v["state"] == "queued" {
        if broken.load(Ordering::Relaxed) {
            panic!("another client failed");
        }
        assert!(
            Instant::now() < deadline,
            "request {id} still queued at the deadline (deadlock?): {v}"
        );
        let position = v["position"].as_u64().unwrap() as usize;
        assert!(
            position <= last_position,
            "request {id} moved back in the queue: {last_position} -> {position}"
        );
        last_position = position;
        std::thread::sleep(poll_after(v["predicted_start_in_s"].as_f64()));
        let (status, body) = call(&socket, "GET", &format!("/v1/admissions/{id}"), "");
        assert_eq!(status, 200, "GET {id}: {body}");
        v = serde_json::from_str(&body).unwrap();
        polls += 1;
    }
    assert_eq!(v["state"], "admitted", "request {id}: {v}");
    let waited = t0.elapsed();
    let started = format!(
        r#"{{"pid":{},"start_time":{}}}"#,
        std::process::id(),
        own_start_time()
    );
    let (status, body) = call(
        &socket,
        "POST",
        &format!("/v1/admissions/{id}/started"),
        &started,
    );
    assert_eq!(status, 204, "started {id}: {body}");
    std::thread::sleep(HOLD);
    let (status, body) = call(
        &socket,
        "POST",
        &format!("/v1/admissions/{id}/finished"),
        r#"{"exit_code":0,"signal":null,"oom":false}"#,
    );
    assert_eq!(status, 204, "finished {id}: {body}");
    Seen { id, polls, waited }
}

#[test]
fn concurrent_run_requests_are_all_answered_in_fifo_order() {
    let n = if full() { FULL_CLIENTS } else { CI_CLIENTS };
    let bound = Duration::from_secs(if full() { 600 } else { 120 });
    let mut w = World::h100("load", 40.0);
    w.start_daemon(&[]);
    let pid = w.daemon.as_ref().unwrap().id();
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(pid);

    // RSS monitor.
    let peak_rss = Arc::new(AtomicU64::new(rss_idle));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (peak_rss, done) = (peak_rss.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kib) = s
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak_rss.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let t0 = Instant::now();
    let deadline = t0 + bound;
    let start = Arc::new(Barrier::new(n));
    let broken = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (socket, start, broken) = (w.socket.clone(), start.clone(), broken.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let b = broken.clone();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        client(socket, start, deadline, b)
                    }));
                    if r.is_err() {
                        broken.store(true, Ordering::Relaxed);
                    }
                    r
                })
                .unwrap()
        })
        .collect();
    let mut seen = Vec::new();
    for t in threads {
        match t.join().unwrap() {
            Ok(s) => seen.push(s),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    let wall = t0.elapsed();
    // The daemon closes nothing late: a sampling round later, it holds nothing.
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = rss_kib(pid);
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    let rss_peak = peak_rss.load(Ordering::Relaxed);
    let (status, body) = call(&w.socket, "GET", "/v1/status", "");
    assert_eq!(status, 200);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (st["queued"].as_u64(), st["running"].as_u64()),
        (Some(0), Some(0)),
        "{body}"
    );

    // Every request answered with its own id, and recorded.
    let mut ids: Vec<u64> = seen.iter().map(|s| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate ids");
    let db = w.state.join("headroom.db");
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, state, admitted_at FROM runs ORDER BY CAST(id AS INTEGER)")
        .unwrap();
    let runs: Vec<(u64, String, f64)> = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?.parse().unwrap(),
                r.get(1)?,
                r.get(2)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(runs.len(), n, "runs recorded");
    assert!(runs.iter().all(|r| r.1 == "completed"), "not all completed");
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    // FIFO: in arrival (id) order, admission times never go back.
    for pair in runs.windows(2) {
        assert!(
            pair[1].2 >= pair[0].2,
            "request {} (later) admitted at {:.3}, before request {} at {:.3}",
            pair[1].0,
            pair[1].2,
            pair[0].0,
            pair[0].2
        );
    }
    let grown = rss_peak.saturating_sub(rss_idle);
    assert!(
        grown < RSS_BOUND_KIB,
        "daemon RSS grew {grown} KiB with {n} requests (bound {RSS_BOUND_KIB} KiB)"
    );
    let polls: usize = seen.iter().map(|s| s.polls).sum();
    let max_wait = seen.iter().map(|s| s.waited).max().unwrap();
    eprintln!(
        "{n} concurrent requests on one GPU: all answered and completed in {:.1} s (bound {} s); \
         FIFO kept; {polls} status polls; longest wait {:.1} s; daemon RSS {} KiB idle, \
         {} KiB peak (+{grown} KiB), {} KiB after",
        wall.as_secs_f64(),
        bound.as_secs(),
        max_wait.as_secs_f64(),
        rss_idle,
        rss_peak,
        rss_after
    );
}
