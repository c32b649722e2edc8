//! What the bench reads from `/proc`: a process's CPU time (`/proc/PID/stat` utime + stime,
//! plus its waited-for children's, for exporters that run `nvidia-smi`), its resident memory
//! (`/proc/PID/status` VmRSS), per-thread CPU of another process (`/proc/PID/task/*/schedstat`),
//! the calling thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`), and the
//! machine's load average.

use anyhow::{Context, Result, bail};
use std::sync::OnceLock;
use std::time::Duration;

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that cannot be asked).
pub fn clock_ticks() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t: &u64| t > 0)
            .unwrap_or(100)
    })
}

/// CPU time of a process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    /// utime + stime of the process itself (all its threads).
    pub own: Duration,
    /// cutime + cstime: its children that it has waited for.
    pub children: Duration,
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / clock_ticks() as f64)
}

/// CPU time of `pid`.
pub fn cpu(pid: u32) -> Result<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Field 2 (comm) may contain spaces; count fields after its closing parenthesis.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .context("malformed stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': index 0 is field 3 (state); utime is field 14 → index 11.
    let num = |i: usize| -> Result<u64> {
        f.get(i)
            .context("short stat")?
            .parse::<u64>()
            .context("bad stat field")
    };
    Ok(Cpu {
        own: ticks(num(11)? + num(12)?),
        children: ticks(num(13)? + num(14)?),
    })
}

/// Resident set size of `pid` in bytes (`VmRSS`).
pub fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            let kib: u64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .context("bad VmRSS")?;
            return Ok(kib * 1024);
        }
    }
    bail!("no VmRSS in /proc/{pid}/status")
}

/// CPU time the calling thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`, which
/// counts the running slice too; `/proc/thread-self/schedstat` only advances at ticks).
pub fn thread_cpu_ns() -> Result<u64> {
    use nix::time::{ClockId, clock_gettime};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).context("clock_gettime")?;
    Ok(u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(t.tv_nsec()).unwrap_or(0))
}

/// The 1-minute load average (to tell a quiet machine from a busy one in a report).
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Number of CPUs online.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU nanoseconds of each live thread of `pid` (`/proc/PID/task/TID/schedstat`). Precise,
/// but blind to threads that end between two readings: use it where threads live long.
pub fn threads_cpu_ns(pid: u32) -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(ns) = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            out.insert(tid, ns);
        }
    }
    out
}

/// CPU nanoseconds between two [`threads_cpu_ns`] readings, over threads present in both.
pub fn threads_delta_ns(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> u64 {
    after
        .iter()
        .filter_map(|(tid, ns)| Some(ns.saturating_sub(*before.get(tid)?)))
        .sum()
}
