//! Load (issue 7): scrapes of the real exporter at concurrency 64 over loopback. Every scrape
//! must succeed (200, a complete OpenMetrics body ending in `# EOF`), and the exporter's RSS
//! must be flat: after a warm-up (the first [`WARMUP_SHARE`] of the scrapes, which fills
//! allocator pools and per-connection buffers), it may not grow by more than
//! [`RSS_GROWTH_KIB`] to the end.
//!
//! Clients work like Prometheus: one keep-alive connection each, reconnecting every
//! [`PER_CONNECTION`] scrapes (so accepts and connection teardown are exercised too).
//! `bench/src/scrape.rs` measures the same path for speed; this test is about errors and
//! memory.
//!
//! CI runs [`CI_SCRAPES`]; `HEADROOM_FULL=1` runs [`FULL_SCRAPES`] (docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CI_SCRAPES: usize = 5_000;
/// Full run (`HEADROOM_FULL=1`).
const FULL_SCRAPES: usize = 100_000;
const CONCURRENCY: usize = 64;
const PER_CONNECTION: usize = 100;
/// Share of the scrapes run before the RSS baseline is taken.
const WARMUP_SHARE: usize = 10;
/// RSS growth allowed from the end of the warm-up to the end.
const RSS_GROWTH_KIB: u64 = 4 * 1024;

fn full() -> bool {
    std::env::var("HEADROOM_FULL").is_ok_and(|v| v == "1")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One scrape on a keep-alive connection; `Err` describes what went wrong.
fn scrape(conn: &mut BufReader<TcpStream>, addr: SocketAddr, close: bool) -> Result<usize, String> {
    let extra = if close { "Connection: close\r\n" } else { "" };
    write!(
        conn.get_mut(),
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut status = String::new();
    conn.read_line(&mut status)
        .map_err(|e| format!("status line: {e}"))?;
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("status {status:?}"));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line)
            .map_err(|e| format!("header: {e}"))?;
        if line == "\r\n" {
            break;
        }
        if line.is_empty() {
            return Err("connection closed in the headers".into());
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body)
        .map_err(|e| format!("body of {length} bytes: {e}"))?;
    if !body.ends_with(b"# EOF\n") {
        return Err("exposition does not end with # EOF".into());
    }
    Ok(length)
}

#[test]
fn scrapes_at_concurrency_64_have_no_errors_and_flat_rss() {
    let total = if full() { FULL_SCRAPES } else { CI_SCRAPES };
    let scenario = repo_root().join("scenarios/h100-mps-wan22.toml");
    let lib = fake_nvml();
    let e = start(
        &[
            "--simulate",
            scenario.to_str().unwrap(),
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--interval",
            "1s",
        ],
        &[],
    );
    metrics_after(&e, 1);
    let pid = e.child.id();
    let addr = e.addr;
    let rss_start = rss_kib(pid);

    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let warmup = total / WARMUP_SHARE;
    let rss_warm = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, errors, bytes, first_error, rss_warm) = (
                next.clone(),
                errors.clone(),
                bytes.clone(),
                first_error.clone(),
                rss_warm.clone(),
            );
            std::thread::spawn(move || {
                let connect = || {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    BufReader::new(s)
                };
                let mut conn = connect();
                let mut on_conn = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    if i == warmup {
                        rss_warm.store(rss_kib(pid), Ordering::Relaxed);
                    }
                    on_conn += 1;
                    let close = on_conn == PER_CONNECTION;
                    match scrape(&mut conn, addr, close) {
                        Ok(n) => {
                            bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(m) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(m);
                            conn = connect();
                            on_conn = 0;
                            continue;
                        }
                    }
                    if close {
                        conn = connect();
                        on_conn = 0;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wall = t0.elapsed();
    let rss_end = rss_kib(pid);
    let rss_warm = rss_warm.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    assert_eq!(
        errors,
        0,
        "{errors} of {total} scrapes failed; first: {:?}",
        first_error.lock().unwrap()
    );
    let grown = rss_end.saturating_sub(rss_warm);
    eprintln!(
        "{total} scrapes at concurrency {CONCURRENCY} in {:.1} s ({:.0}/s), 0 errors, {:.1} KiB \
         per scrape; exporter RSS {rss_start} KiB before, {rss_warm} KiB after {warmup} \
         (warm-up), {rss_end} KiB at the end (+{grown} KiB, bound {RSS_GROWTH_KIB} KiB)",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        bytes.load(Ordering::Relaxed) as f64 / total as f64 / 1024.0,
    );
    assert!(
        grown <= RSS_GROWTH_KIB,
        "exporter RSS grew {grown} KiB after the warm-up ({rss_warm} -> {rss_end} KiB)"
    );
    // Still healthy afterwards.
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
}
