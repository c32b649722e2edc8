//! Goodput scenarios: the GPU, the workloads' true memory-over-time timelines, the
//! contention model, the noise, and the arrivals (a batch or a Poisson stream). Read from
//! TOML (`scenarios/goodput/*.toml`, format in `docs/benchmarks.md`); every problem in a file
//! is reported at once, naming the file and the field.

use crate::rng::Rng;
use headroom_core::mig_profiles::{self, MigTable};
use headroom_core::units::parse_size;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most jobs one scenario may hold (a batch's counts, a stream's expected arrivals): bounds
/// the memory a scenario file can make the simulator allocate.
pub const MAX_JOBS: u32 = 100_000;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    /// Another file (relative to this one) whose `[[workload]]` entries are added.
    #[serde(default)]
    workloads_from: Option<String>,
    gpu: RawGpu,
    #[serde(default)]
    contention: RawContention,
    #[serde(default)]
    noise: RawNoise,
    #[serde(default)]
    sim: RawSim,
    #[serde(default)]
    workload: Vec<RawWorkload>,
    #[serde(default)]
    arrivals: Vec<RawArrival>,
    #[serde(default)]
    stream: Option<RawStream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloads {
    #[serde(default)]
    workload: Vec<RawWorkload>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpu {
    name: String,
    memory_total: String,
    #[serde(default)]
    memory_reserved: Option<String>,
    /// Memory of processes no policy starts (the MPS server).
    #[serde(default)]
    unmanaged: Option<String>,
    sm_count: u32,
    #[serde(default)]
    mig_profiles: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawContention {
    mps_slowdown: Vec<f64>,
    mig_speed_exponent: f64,
}

impl Default for RawContention {
    fn default() -> Self {
        RawContention {
            mps_slowdown: vec![1.0],
            mig_speed_exponent: 1.0,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawNoise {
    duration: f64,
    peak: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSim {
    sample_s: f64,
    staggers_s: Vec<f64>,
    margin: f64,
}

impl Default for RawSim {
    fn default() -> Self {
        RawSim {
            sample_s: 1.0,
            staggers_s: vec![30.0, 60.0, 90.0, 120.0],
            margin: 0.10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: String,
    timeline: Vec<(f64, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrival {
    workload: String,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    at_s: f64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    hours: f64,
    jobs_per_hour: f64,
    mix: Vec<RawMix>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    workload: String,
    weight: f64,
}

/// The simulated GPU.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub name: String,
    pub memory_total: u64,
    pub memory_reserved: u64,
    /// Memory used by processes outside every policy's control (the MPS server).
    pub unmanaged: u64,
    pub sm_count: u32,
    pub mig: Option<&'static MigTable>,
}

impl Gpu {
    /// What processes can use: total − reserved.
    pub fn capacity(&self) -> u64 {
        self.memory_total.saturating_sub(self.memory_reserved)
    }
}

/// How co-runners slow each other down (documented in `docs/benchmarks.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Contention {
    /// Slowdown with 1, 2, 3, … processes under MPS on one device (the last step is
    /// extended linearly beyond the list), as the fake GPU applies it.
    pub mps: headroom_core::contention::Contention,
    /// A process alone on a MIG slice with SM share `s` runs at `s^exponent` of its
    /// full-GPU speed (1 = exactly its SM share).
    pub mig_speed_exponent: f64,
}

impl Contention {
    pub fn slowdown(&self, n: usize) -> f64 {
        self.mps.factor(n)
    }

    pub fn mig_speed(&self, sm_share: f64) -> f64 {
        sm_share.clamp(0.0, 1.0).powf(self.mig_speed_exponent)
    }
}

/// A workload's true memory over solo (full-GPU, alone) seconds: piecewise linear.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    pub points: Vec<(f64, u64)>,
}

impl Workload {
    pub fn duration_s(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    pub fn peak(&self) -> u64 {
        self.points.iter().map(|p| p.1).max().unwrap_or(0)
    }

    /// Memory after `t` solo seconds (clamped to the timeline).
    pub fn at(&self, t: f64) -> u64 {
        let pts = &self.points;
        let Some(first) = pts.first() else { return 0 };
        if t <= first.0 {
            return first.1;
        }
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if t <= b.0 {
                let f = (t - a.0) / (b.0 - a.0);
                return (a.1 as f64 + (b.1 as f64 - a.1 as f64) * f).round() as u64;
            }
        }
        pts.last().map_or(0, |p| p.1)
    }
}

/// Where jobs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// Fixed jobs: `(arrival seconds, workload index)`.
    Batch(Vec<(f64, usize)>),
    /// A Poisson stream over `hours`, each job's workload drawn by weight.
    Stream {
        hours: f64,
        jobs_per_hour: f64,
        mix: Vec<(usize, f64)>,
    },
}

/// Per-run noise: each job's duration and memory are scaled by factors drawn uniformly from
/// `1 ± duration` and `1 ± peak`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    pub duration: f64,
    pub peak: f64,
}

/// A loaded scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub gpu: Gpu,
    pub contention: Contention,
    pub noise: Noise,
    pub workloads: Vec<Workload>,
    pub arrivals: Arrivals,
    /// Sampling period of the simulated sidecar and of the memory check (seconds).
    pub sample_s: f64,
    /// Fixed staggers tried (the best is chosen with hindsight).
    pub staggers_s: Vec<f64>,
    /// Headroom's margin over a learned peak (its MPS limit); the MIG policy's fit check.
    pub margin: f64,
}

/// One job of a run: what arrives when, and its true (jittered) size and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub id: usize,
    pub workload: usize,
    pub arrival: f64,
    /// Multiplies the workload's solo duration.
    pub duration_factor: f64,
    /// Multiplies the workload's memory.
    pub memory_factor: f64,
}

impl Scenario {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: Raw = read_toml(path)?;
        let mut problems = Vec::new();
        let mut raw_workloads = Vec::new();
        if let Some(from) = &raw.workloads_from {
            let other = path.parent().unwrap_or(Path::new(".")).join(from);
            let extra: RawWorkloads = read_toml(&other)?;
            raw_workloads.extend(extra.workload);
        }
        let Raw {
            name,
            description,
            gpu,
            contention,
            noise,
            sim,
            workload,
            arrivals,
            stream,
            ..
        } = raw;
        raw_workloads.extend(workload);
        let gpu = check_gpu(gpu, &mut problems);
        let workloads = check_workloads(raw_workloads, &mut problems);
        let find = |name: &str, problems: &mut Vec<String>, what: &str| {
            let i = workloads.iter().position(|w| w.name == name);
            if i.is_none() {
                problems.push(format!("{what}: unknown workload {name:?}"));
            }
            i
        };
        let arrivals = match (arrivals.is_empty(), stream) {
            (false, Some(_)) => {
                problems.push("give either [[arrivals]] or [stream], not both".into());
                Arrivals::Batch(Vec::new())
            }
            (true, None) => {
                problems.push("no jobs: give [[arrivals]] or [stream]".into());
                Arrivals::Batch(Vec::new())
            }
            (false, None) => {
                let mut jobs = Vec::new();
                for (i, a) in arrivals.iter().enumerate() {
                    let what = format!("arrivals[{i}]");
                    if !(a.at_s.is_finite() && a.at_s >= 0.0) {
                        problems.push(format!("{what}.at_s: {} is not ≥ 0", a.at_s));
                    }
                    if a.count == 0 || a.count > MAX_JOBS {
                        problems.push(format!("{what}.count: must be 1 to {MAX_JOBS}"));
                    }
                    if let Some(w) = find(&a.workload, &mut problems, &what)
                        && a.count <= MAX_JOBS
                    {
                        jobs.extend((0..a.count).map(|_| (a.at_s.max(0.0), w)));
                    }
                }
                if jobs.len() > MAX_JOBS as usize {
                    problems.push(format!(
                        "arrivals: {} jobs, more than {MAX_JOBS}",
                        jobs.len()
                    ));
                }
                jobs.sort_by(|a, b| a.0.total_cmp(&b.0));
                Arrivals::Batch(jobs)
            }
            (true, Some(s)) => {
                if !(s.hours.is_finite() && s.hours > 0.0 && s.hours <= 24.0 * 30.0) {
                    problems.push(format!("stream.hours: {} is not in (0, 720]", s.hours));
                }
                if !(s.jobs_per_hour.is_finite() && s.jobs_per_hour > 0.0) {
                    problems.push(format!(
                        "stream.jobs_per_hour: {} is not > 0",
                        s.jobs_per_hour
                    ));
                }
                if s.mix.is_empty() {
                    problems.push("stream.mix: empty".into());
                }
                let mut mix = Vec::new();
                for (i, m) in s.mix.iter().enumerate() {
                    let what = format!("stream.mix[{i}]");
                    if !(m.weight.is_finite() && m.weight > 0.0) {
                        problems.push(format!("{what}.weight: {} is not > 0", m.weight));
                    }
                    if let Some(w) = find(&m.workload, &mut problems, &what) {
                        mix.push((w, m.weight));
                    }
                }
                Arrivals::Stream {
                    hours: s.hours,
                    jobs_per_hour: s.jobs_per_hour,
                    mix,
                }
            }
        };
        let c = contention;
        if c.mps_slowdown.is_empty() || c.mps_slowdown.iter().any(|f| !(f.is_finite() && *f >= 1.0))
        {
            problems.push(format!(
                "contention.mps_slowdown: {:?} must be a non-empty list of factors ≥ 1",
                c.mps_slowdown
            ));
        }
        if !(c.mig_speed_exponent.is_finite() && c.mig_speed_exponent >= 0.0) {
            problems.push(format!(
                "contention.mig_speed_exponent: {} is not ≥ 0",
                c.mig_speed_exponent
            ));
        }
        for (field, v) in [
            ("noise.duration", noise.duration),
            ("noise.peak", noise.peak),
        ] {
            if !(v.is_finite() && (0.0..0.5).contains(&v)) {
                problems.push(format!("{field}: {v} is not in [0, 0.5)"));
            }
        }
        if !(sim.sample_s.is_finite() && sim.sample_s > 0.0 && sim.sample_s <= 60.0) {
            problems.push(format!("sim.sample_s: {} is not in (0, 60]", sim.sample_s));
        }
        if sim.staggers_s.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            problems.push(format!("sim.staggers_s: {:?} must be ≥ 0", sim.staggers_s));
        }
        if !(sim.margin.is_finite() && (0.0..=1.0).contains(&sim.margin)) {
            problems.push(format!("sim.margin: {} is not in [0, 1]", sim.margin));
        }
        if name.trim().is_empty() {
            problems.push("name: empty".into());
        }
        if !problems.is_empty() {
            return Err(ScenarioError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        Ok(Scenario {
            name,
            description,
            gpu,
            contention: Contention {
                mps: headroom_core::contention::Contention::new(c.mps_slowdown),
                mig_speed_exponent: c.mig_speed_exponent,
            },
            noise: Noise {
                duration: noise.duration,
                peak: noise.peak,
            },
            workloads,
            arrivals,
            sample_s: sim.sample_s,
            staggers_s: sim.staggers_s,
            margin: sim.margin,
        })
    }

    /// The jobs of one run: identical for every policy given the same seed.
    pub fn jobs(&self, seed: u64) -> Vec<Job> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        let mut push = |rng: &mut Rng, arrival: f64, workload: usize| {
            let d = self.noise.duration;
            let p = self.noise.peak;
            let duration_factor = rng.uniform(1.0 - d, 1.0 + d);
            let memory_factor = rng.uniform(1.0 - p, 1.0 + p);
            let id = out.len();
            out.push(Job {
                id,
                workload,
                arrival,
                duration_factor,
                memory_factor,
            });
        };
        match &self.arrivals {
            Arrivals::Batch(list) => {
                for &(at, w) in list {
                    push(&mut rng, at, w);
                }
            }
            Arrivals::Stream {
                hours,
                jobs_per_hour,
                mix,
            } => {
                let total: f64 = mix.iter().map(|m| m.1).sum();
                let end = hours * 3600.0;
                let mut t = 0.0;
                for _ in 0..2 * MAX_JOBS {
                    t += rng.exponential(3600.0 / jobs_per_hour);
                    if t >= end {
                        break;
                    }
                    let mut pick = rng.unit() * total;
                    let mut w = mix.first().map_or(0, |m| m.0);
                    for &(i, weight) in mix {
                        w = i;
                        if pick < weight {
                            break;
                        }
                        pick -= weight;
                    }
                    push(&mut rng, t, w);
                }
            }
        }
        out
    }

    /// A job's true memory after `progress` solo seconds of its own (jittered) run.
    pub fn memory(&self, job: &Job, progress: f64) -> u64 {
        let Some(w) = self.workloads.get(job.workload) else {
            return 0;
        };
        let t = progress / job.duration_factor.max(1e-9);
        (w.at(t) as f64 * job.memory_factor).round() as u64
    }

    /// A job's true solo duration (full GPU, alone).
    pub fn duration(&self, job: &Job) -> f64 {
        self.workloads
            .get(job.workload)
            .map_or(0.0, |w| w.duration_s() * job.duration_factor)
    }

    pub fn workload_name(&self, job: &Job) -> &str {
        self.workloads.get(job.workload).map_or("?", |w| &w.name)
    }
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ScenarioError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn size(field: &str, s: &str, problems: &mut Vec<String>) -> u64 {
    parse_size(s).unwrap_or_else(|e| {
        problems.push(format!("{field}: {e}"));
        0
    })
}

fn check_gpu(g: RawGpu, problems: &mut Vec<String>) -> Gpu {
    let memory_total = size("gpu.memory_total", &g.memory_total, problems);
    let memory_reserved = g
        .memory_reserved
        .as_deref()
        .map_or(0, |s| size("gpu.memory_reserved", s, problems));
    let unmanaged = g
        .unmanaged
        .as_deref()
        .map_or(0, |s| size("gpu.unmanaged", s, problems));
    if memory_total == 0 {
        problems.push("gpu.memory_total: must be > 0".into());
    } else if memory_reserved + unmanaged >= memory_total {
        problems.push("gpu: memory_reserved + unmanaged leave no memory".into());
    }
    if g.sm_count == 0 {
        problems.push("gpu.sm_count: must be > 0".into());
    }
    let mig = g.mig_profiles.as_deref().and_then(|key| {
        let t = mig_profiles::table(key);
        if t.is_none() {
            problems.push(format!("gpu.mig_profiles: unknown MIG table {key:?}"));
        }
        t
    });
    Gpu {
        name: g.name,
        memory_total,
        memory_reserved,
        unmanaged,
        sm_count: g.sm_count,
        mig,
    }
}

fn check_workloads(raw: Vec<RawWorkload>, problems: &mut Vec<String>) -> Vec<Workload> {
    let mut out: Vec<Workload> = Vec::new();
    for w in raw {
        let what = format!("workload {:?}", w.name);
        if out.iter().any(|o| o.name == w.name) {
            problems.push(format!("{what}: defined twice"));
            continue;
        }
        let mut points = Vec::new();
        let mut prev: Option<f64> = None;
        for (i, (t, s)) in w.timeline.iter().enumerate() {
            if !(t.is_finite() && *t >= 0.0) || prev.is_some_and(|p| *t <= p) {
                problems.push(format!(
                    "{what}: timeline[{i}] time {t} must be ≥ 0 and after the previous point"
                ));
            }
            prev = Some(*t);
            points.push((*t, size(&format!("{what}: timeline[{i}]"), s, problems)));
        }
        if points.len() < 2 || points.last().is_some_and(|p| p.0 <= 0.0) {
            problems.push(format!(
                "{what}: timeline needs ≥ 2 points ending after 0 s"
            ));
        }
        out.push(Workload {
            name: w.name,
            points,
        });
    }
    if out.is_empty() {
        problems.push("no [[workload]]".into());
    }
    out
}
