//! `headroom-bench compare`: several exporters side by side at one interval, one after the
//! other on the same machine (for real hardware: Headroom, a pynvml + prometheus_client
//! exporter, an nvidia-smi exporter; see `hw/bench-exporter.sh`). Each is started with
//! `sh -c 'exec COMMAND'`, waited for until its URL answers 200, warmed up, then scraped once
//! per interval for `--seconds`, each scrape on a fresh connection (as servers that close
//! after each response need). Figures: CPU per collect-and-scrape over the window divided by
//! the scrapes, scrape latency, bytes per scrape, RSS. The first exporter is the baseline the
//! others' CPU is divided by.
//!
//! CPU is the exporter's threads' own time in nanoseconds (`/proc/PID/task/*/schedstat`,
//! exact for exporters whose threads live throughout: all those in `hw/` do their work on
//! long-lived threads) plus its waited-for children's (`nvidia-smi`; `/proc/PID/stat`
//! cutime + cstime). The process's utime + stime (10 ms ticks, any thread) is reported as a
//! cross-check.

use crate::http::{Conn, get_once};
use crate::procstat;
use crate::stats::{Summary, Table};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `NAME=HOST:PORT=COMMAND`: an exporter, its metrics address (path /metrics) and the
    /// shell command that runs it in the foreground. Repeat; the first is the baseline.
    #[arg(long = "exporter", required = true)]
    pub exporters: Vec<String>,
    /// Collection and scrape interval.
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Measured seconds per exporter.
    #[arg(long, default_value_t = 120.0)]
    pub seconds: f64,
    /// Seconds after the first good answer before measuring.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub command: String,
    pub scrapes: usize,
    pub failed_scrapes: usize,
    pub wall_s: f64,
    /// CPU per scrape (one collection and one scrape at this interval): threads + children.
    pub cpu_us_per_scrape: f64,
    /// The exporter's threads alive throughout the window (nanosecond resolution).
    pub cpu_threads_us_per_scrape: f64,
    /// Its waited-for children (`nvidia-smi`).
    pub cpu_children_us_per_scrape: f64,
    /// Cross-check: utime + stime of the process (10 ms ticks, every thread).
    pub cpu_ticks_own_us_per_scrape: f64,
    pub latency: Summary,
    pub bytes_per_scrape_mean: f64,
    pub samples_last_scrape: usize,
    pub rss_bytes_end: u64,
    /// CPU per scrape over the first exporter's.
    pub cpu_vs_baseline: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub interval: String,
    pub seconds: f64,
    pub cpus: usize,
    pub rows: Vec<Row>,
}

struct Spec {
    name: String,
    addr: SocketAddr,
    command: String,
}

fn parse(spec: &str) -> Result<Spec> {
    let mut parts = spec.splitn(3, '=');
    let (Some(name), Some(addr), Some(command)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("--exporter {spec:?}: expected NAME=HOST:PORT=COMMAND");
    };
    Ok(Spec {
        name: name.to_string(),
        addr: addr
            .parse()
            .with_context(|| format!("--exporter {name}: bad address {addr:?}"))?,
        command: command.to_string(),
    })
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn one(spec: &Spec, interval: Duration, seconds: f64, warmup: f64) -> Result<Row> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {}", spec.command))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", spec.name))?;
    let result = (|| -> Result<Row> {
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((200, _)) = get_once(spec.addr, "/metrics") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{} exited before answering: {status}", spec.name);
            }
            if Instant::now() > deadline {
                bail!("{} never answered on {}", spec.name, spec.addr);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs_f64(warmup));
        let mut buf = Vec::new();
        let (mut lat, mut bytes, mut failed, mut samples) = (Vec::new(), 0usize, 0, 0);
        let c0 = procstat::cpu(pid)?;
        let t0 = procstat::threads_cpu_ns(pid);
        let start = Instant::now();
        let mut next = start;
        while start.elapsed().as_secs_f64() < seconds {
            next += interval;
            let t = Instant::now();
            match Conn::open(spec.addr, "/metrics").and_then(|mut c| c.get(&mut buf, true)) {
                Ok(r) if r.status == 200 => {
                    lat.push(t.elapsed());
                    bytes += r.body_len;
                    samples = r
                        .body
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty() && l[0] != b'#')
                        .count();
                    buf = r.body;
                }
                _ => failed += 1,
            }
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let c1 = procstat::cpu(pid)?;
        let threads = procstat::threads_delta_ns(&t0, &procstat::threads_cpu_ns(pid));
        let rss = procstat::rss(pid).unwrap_or(0);
        let n = lat.len().max(1) as f64;
        let own = (c1.own - c0.own).as_secs_f64() * 1e6 / n;
        let children = (c1.children - c0.children).as_secs_f64() * 1e6 / n;
        let threads = threads as f64 / 1e3 / n;
        Ok(Row {
            name: spec.name.clone(),
            command: spec.command.clone(),
            scrapes: lat.len(),
            failed_scrapes: failed,
            wall_s: wall,
            cpu_us_per_scrape: threads + children,
            cpu_threads_us_per_scrape: threads,
            cpu_children_us_per_scrape: children,
            cpu_ticks_own_us_per_scrape: own,
            latency: Summary::of(&lat),
            bytes_per_scrape_mean: bytes as f64 / n,
            samples_last_scrape: samples,
            rss_bytes_end: rss,
            cpu_vs_baseline: 1.0,
        })
    })();
    stop(&mut child);
    result
}

pub fn run(args: &Args) -> Result<()> {
    let interval = headroom_core::units::parse_duration(&args.interval)?;
    let specs: Vec<Spec> = args
        .exporters
        .iter()
        .map(|s| parse(s))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for s in &specs {
        rows.push(one(s, interval, args.seconds, args.warmup)?);
    }
    let base = rows.first().map_or(0.0, |r| r.cpu_us_per_scrape);
    for r in &mut rows {
        r.cpu_vs_baseline = if base > 0.0 {
            r.cpu_us_per_scrape / base
        } else {
            f64::NAN
        };
    }
    let report = Report {
        interval: args.interval.clone(),
        seconds: args.seconds,
        cpus: procstat::cpus(),
        rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut t = Table::new(&[
            "exporter",
            "scrapes",
            "CPU µs/collect+scrape",
            "threads + children µs",
            "ticks cross-check µs",
            "× baseline",
            "p50 ms",
            "p99 ms",
            "max ms",
            "KiB/scrape",
            "samples",
            "RSS MiB",
        ]);
        for r in &report.rows {
            t.row(vec![
                r.name.clone(),
                format!("{} ({} failed)", r.scrapes, r.failed_scrapes),
                format!("{:.0}", r.cpu_us_per_scrape),
                format!(
                    "{:.0} + {:.0}",
                    r.cpu_threads_us_per_scrape, r.cpu_children_us_per_scrape
                ),
                format!(
                    "{:.0}",
                    r.cpu_ticks_own_us_per_scrape + r.cpu_children_us_per_scrape
                ),
                format!("{:.1}", r.cpu_vs_baseline),
                format!("{:.3}", r.latency.p50_us / 1000.0),
                format!("{:.3}", r.latency.p99_us / 1000.0),
                format!("{:.3}", r.latency.max_us / 1000.0),
                format!("{:.1}", r.bytes_per_scrape_mean / 1024.0),
                r.samples_last_scrape.to_string(),
                format!("{:.1}", r.rss_bytes_end as f64 / 1048576.0),
            ]);
        }
        print!(
            "compare: interval {}, {} s each, one scrape per interval; baseline = first row\n\n{}",
            report.interval,
            report.seconds,
            t.render()
        );
    }
    Ok(())
}
