//! `headroom-bench scrape`: the scrape path. Starts the release exporter on the fake NVML
//! (clock running, so clients come and go), then for each concurrency level drives `GET
//! /metrics` from that many keep-alive client threads and reports scrapes/s, p50/p99/max
//! latency, bytes per scrape and exporter CPU per 1,000 scrapes.
//!
//! Baselines measured in the same run: latency against `GET /readyz` through the same server
//! and client at the same concurrency (the HTTP floor); CPU against the exporter's idle CPU
//! rate (sampler only, no scrapes) over the same wall time.

use crate::exporter::{self, Exporter, Launch};
use crate::http::Conn;
use crate::procstat;
use crate::stats::{Summary, Table, us};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Options of `scrape`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario the exporter simulates.
    #[arg(long, default_value = "scenarios/large.toml")]
    pub scenario: PathBuf,
    /// Concurrency levels (client threads with one keep-alive connection each).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Scrapes per concurrency level.
    #[arg(long, default_value_t = 4000)]
    pub requests: usize,
    /// Seconds of idle exporter CPU measured as the baseline (no scrapes).
    #[arg(long, default_value_t = 5.0)]
    pub idle_seconds: f64,
    /// Exporter binary (default: `headroom-exporter` beside this binary). Repeat to compare
    /// builds (e.g. before and after a change) in one run; the first is the baseline.
    #[arg(long)]
    pub exporter: Vec<PathBuf>,
    /// Runs per exporter, interleaved (A B A B ...); the summary shows medians.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Fake NVML library (default: the one beside this binary).
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
    /// Collection interval passed to the exporter.
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Extra arguments for the exporter (e.g. `--extra=--compat --extra=dcgm`).
    #[arg(long, allow_hyphen_values = true)]
    pub extra: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub requests: usize,
    pub wall_s: f64,
    pub scrapes_per_s: f64,
    pub latency: Summary,
    /// Baseline: `/readyz` through the same server and client at this concurrency.
    pub readyz_latency: Summary,
    pub bytes_per_scrape_mean: f64,
    pub bytes_per_scrape_min: usize,
    pub bytes_per_scrape_max: usize,
    /// Exporter CPU per 1,000 scrapes, gross (its threads' schedstat, nanoseconds).
    pub cpu_s_per_1000: f64,
    /// The same less the idle baseline rate over this level's wall time.
    pub cpu_s_per_1000_net: f64,
    /// Cross-check from `/proc/PID/stat` utime + stime (10 ms ticks; includes any thread).
    pub cpu_ticks_s_per_1000: f64,
    /// The load generator's own CPU per 1,000 scrapes (it shares the machine).
    pub client_cpu_s_per_1000: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub exporter: String,
    pub cpus: usize,
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
    /// Samples (non-comment lines) in the first scrape.
    pub series_first_scrape: usize,
    pub idle_cpu_s_per_s: f64,
    pub idle_seconds: f64,
    pub exporter_rss_bytes_end: u64,
    pub levels: Vec<Level>,
    /// p99 at concurrency 16 ≤ 2 ms (when 16 was measured).
    pub target_p99_c16_ok: Option<bool>,
}

struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
    bytes: Vec<usize>,
}

/// `requests` GETs of `path` spread over `concurrency` threads.
fn drive(addr: SocketAddr, path: &str, concurrency: usize, requests: usize) -> Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    // Connect everyone first so connection set-up is not in the measured window.
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::open(addr, path)?);
    }
    let start = Instant::now();
    let handles: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let next = next.clone();
            std::thread::spawn(move || -> Result<(Vec<Duration>, Vec<usize>)> {
                let mut lat = Vec::with_capacity(requests / concurrency.max(1) + 1);
                let mut bytes = Vec::with_capacity(lat.capacity());
                let mut buf = Vec::with_capacity(256 * 1024);
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let t = Instant::now();
                    let r = conn.get(&mut buf, false)?;
                    lat.push(t.elapsed());
                    if r.status != 200 {
                        bail!("status {}", r.status);
                    }
                    bytes.push(r.body_len);
                }
                Ok((lat, bytes))
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut bytes = Vec::with_capacity(requests);
    for h in handles {
        let (l, b) = h
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        latencies.extend(l);
        bytes.extend(b);
    }
    Ok(Run {
        wall: start.elapsed(),
        latencies,
        bytes,
    })
}

/// Median of `f` over runs.
fn median(runs: &[&Report], f: impl Fn(&Report) -> Option<f64>) -> f64 {
    let mut v: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[derive(Debug, Serialize)]
struct SummaryRow {
    exporter: String,
    concurrency: usize,
    runs: usize,
    scrapes_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    readyz_p99_ms: f64,
    kib_per_scrape: f64,
    cpu_s_per_1000_net: f64,
}

pub fn run(args: &Args) -> Result<()> {
    let binaries: Vec<PathBuf> = if args.exporter.is_empty() {
        vec![exporter::exporter_path(None)]
    } else {
        args.exporter.clone()
    };
    if binaries.len() == 1 && args.repeat <= 1 {
        let report = run_one(args, &binaries[0])?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", table(&report));
        }
        return Ok(());
    }
    let mut reports: Vec<Report> = Vec::new();
    for round in 0..args.repeat.max(1) {
        for b in &binaries {
            eprintln!(
                "headroom-bench scrape: round {} of {}, {}",
                round + 1,
                args.repeat.max(1),
                b.display()
            );
            reports.push(run_one(args, b)?);
        }
    }
    let mut rows = Vec::new();
    for b in &binaries {
        let name = b.display().to_string();
        let runs: Vec<&Report> = reports.iter().filter(|r| r.exporter == name).collect();
        for &c in &args.concurrency {
            let level = |r: &Report| {
                r.levels
                    .iter()
                    .find(|l| l.concurrency == c)
                    .map(|l| (*l).clone())
            };
            let m = |f: fn(&Level) -> f64| median(&runs, |r| level(r).map(|l| f(&l)));
            rows.push(SummaryRow {
                exporter: name.clone(),
                concurrency: c,
                runs: runs.len(),
                scrapes_per_s: m(|l| l.scrapes_per_s),
                p50_ms: m(|l| l.latency.p50_us / 1000.0),
                p99_ms: m(|l| l.latency.p99_us / 1000.0),
                max_ms: m(|l| l.latency.max_us / 1000.0),
                readyz_p99_ms: m(|l| l.readyz_latency.p99_us / 1000.0),
                kib_per_scrape: m(|l| l.bytes_per_scrape_mean / 1024.0),
                cpu_s_per_1000_net: m(|l| l.cpu_s_per_1000_net),
            });
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "summary": rows, "runs": reports }))?
        );
        return Ok(());
    }
    for r in &reports {
        println!("{}", table(r));
    }
    let mut t = Table::new(&[
        "exporter",
        "concurrency",
        "runs",
        "scrapes/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "readyz p99 ms",
        "KiB/scrape",
        "CPU s/1k net",
    ]);
    for r in &rows {
        t.row(vec![
            r.exporter.clone(),
            r.concurrency.to_string(),
            r.runs.to_string(),
            format!("{:.0}", r.scrapes_per_s),
            format!("{:.3}", r.p50_ms),
            format!("{:.3}", r.p99_ms),
            format!("{:.3}", r.max_ms),
            format!("{:.3}", r.readyz_p99_ms),
            format!("{:.1}", r.kib_per_scrape),
            format!("{:.4}", r.cpu_s_per_1000_net),
        ]);
    }
    println!(
        "medians over interleaved runs (baseline: first exporter)\n\n{}",
        t.render()
    );
    Ok(())
}

fn run_one(args: &Args, binary: &std::path::Path) -> Result<Report> {
    let binary = binary.to_path_buf();
    let lib = exporter::fake_lib_path(args.nvml_lib.as_deref());
    let mut extra = vec!["--interval".to_string(), args.interval.clone()];
    extra.extend(args.extra.iter().cloned());
    let launch = Launch::simulate(binary.clone(), &args.scenario, &lib, &extra);
    let loadavg_start = procstat::loadavg();
    let mut exp = Exporter::start(&launch)?;

    // One scrape to check the exposition and count its series.
    let (status, body) = crate::http::get_once(exp.addr, "/metrics")?;
    if status != 200 || !body.ends_with("# EOF\n") {
        bail!("first scrape: status {status}, not an OpenMetrics exposition");
    }
    let series_first_scrape = body.lines().filter(|l| !l.starts_with('#')).count();

    // Baseline: the exporter's CPU with nobody scraping. The exporter's threads live as long
    // as it does, so their schedstat (nanoseconds) is exact where utime + stime has ticks.
    let c0 = procstat::threads_cpu_ns(exp.pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.idle_seconds));
    let idle_wall = t0.elapsed().as_secs_f64();
    let idle_rate = procstat::threads_delta_ns(&c0, &procstat::threads_cpu_ns(exp.pid)) as f64
        / 1e9
        / idle_wall;

    let me = std::process::id();
    let mut levels = Vec::new();
    for &c in &args.concurrency {
        if c == 0 {
            continue;
        }
        let floor =
            drive(exp.addr, "/readyz", c, args.requests.min(2000)).context("/readyz baseline")?;
        let ticks0 = procstat::cpu(exp.pid)?;
        let cpu0 = procstat::threads_cpu_ns(exp.pid);
        let me0 = procstat::cpu(me)?;
        let r = drive(exp.addr, "/metrics", c, args.requests).context("/metrics")?;
        let cpu =
            procstat::threads_delta_ns(&cpu0, &procstat::threads_cpu_ns(exp.pid)) as f64 / 1e9;
        let ticks = (procstat::cpu(exp.pid)?.own - ticks0.own).as_secs_f64();
        let me_cpu = (procstat::cpu(me)?.own - me0.own).as_secs_f64();
        let n = r.latencies.len().max(1) as f64;
        let wall = r.wall.as_secs_f64();
        levels.push(Level {
            concurrency: c,
            requests: r.latencies.len(),
            wall_s: wall,
            scrapes_per_s: n / wall,
            latency: Summary::of(&r.latencies),
            readyz_latency: Summary::of(&floor.latencies),
            bytes_per_scrape_mean: r.bytes.iter().sum::<usize>() as f64 / n,
            bytes_per_scrape_min: r.bytes.iter().copied().min().unwrap_or(0),
            bytes_per_scrape_max: r.bytes.iter().copied().max().unwrap_or(0),
            cpu_s_per_1000: cpu / n * 1000.0,
            cpu_s_per_1000_net: (cpu - idle_rate * wall).max(0.0) / n * 1000.0,
            cpu_ticks_s_per_1000: ticks / n * 1000.0,
            client_cpu_s_per_1000: me_cpu / n * 1000.0,
        });
    }
    let exporter_rss_bytes_end = procstat::rss(exp.pid)?;
    exp.stop();
    let target_p99_c16_ok = levels
        .iter()
        .find(|l| l.concurrency == 16)
        .map(|l| l.latency.p99_us <= 2000.0);
    let report = Report {
        scenario: args.scenario.display().to_string(),
        exporter: binary.display().to_string(),
        cpus: procstat::cpus(),
        loadavg_start,
        loadavg_end: procstat::loadavg(),
        series_first_scrape,
        idle_cpu_s_per_s: idle_rate,
        idle_seconds: idle_wall,
        exporter_rss_bytes_end,
        levels,
        target_p99_c16_ok,
    };
    Ok(report)
}

fn table(r: &Report) -> String {
    let mut t = Table::new(&[
        "concurrency",
        "scrapes/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "readyz p50/p99 ms",
        "KiB/scrape",
        "CPU s/1k (net)",
        "client CPU s/1k",
    ]);
    let ms = |v: f64| format!("{:.3}", v / 1000.0);
    for l in &r.levels {
        t.row(vec![
            l.concurrency.to_string(),
            format!("{:.0}", l.scrapes_per_s),
            ms(l.latency.p50_us),
            ms(l.latency.p99_us),
            ms(l.latency.max_us),
            format!(
                "{}/{}",
                ms(l.readyz_latency.p50_us),
                ms(l.readyz_latency.p99_us)
            ),
            format!("{:.1}", l.bytes_per_scrape_mean / 1024.0),
            format!("{:.3} ({:.3})", l.cpu_s_per_1000, l.cpu_s_per_1000_net),
            format!("{:.3}", l.client_cpu_s_per_1000),
        ]);
    }
    let mut out = format!(
        "scrape: {} on {} ({} CPUs, load {} → {})\n\
         first scrape: {} samples; exporter idle CPU {} µs/s over {:.1} s (baseline for net CPU); RSS at end {:.1} MiB\n\
         baseline for latency: GET /readyz through the same server and client\n\n",
        r.scenario,
        r.exporter,
        r.cpus,
        r.loadavg_start.map_or("?".into(), |v| format!("{v:.2}")),
        r.loadavg_end.map_or("?".into(), |v| format!("{v:.2}")),
        r.series_first_scrape,
        us(r.idle_cpu_s_per_s * 1e6),
        r.idle_seconds,
        r.exporter_rss_bytes_end as f64 / 1048576.0,
    );
    out.push_str(&t.render());
    if let Some(ok) = r.target_p99_c16_ok {
        out.push_str(&format!(
            "\ntarget p99 ≤ 2 ms at concurrency 16: {}\n",
            if ok { "met" } else { "NOT met" }
        ));
    }
    out
}
