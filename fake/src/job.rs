//! `fake-gpu-job`: plays an inference process on the fake GPU. It registers in the state
//! directory, follows its workload's memory timeline in virtual time (slowed down by the
//! jobs it shares its device with), checks every increase against its MPS limit and the
//! device's free memory under the registry lock, and fails like PyTorch when either is full.

pub mod args;
pub mod oom;

use crate::clock::{Clock, ClockError};
use crate::device::DeviceRef;
use crate::scenario::{Scenario, ScenarioError, Workload};
use crate::state::{LiveJob, StateDir, process_start_ticks};
use headroom_core::mps::LimitError;
use headroom_core::units::Bytes;
use oom::OomReport;
use std::time::{Duration, Instant};

/// Why a job could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0} (see --help)")]
    Usage(String),
    #[error("{key} is not set ({})", describe_env(key))]
    MissingEnv { key: &'static str },
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("unknown workload {name:?} (the scenario has: {})", known.join(", "))]
    UnknownWorkload { name: String, known: Vec<String> },
    #[error("bad CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: {0}")]
    BadLimit(LimitError),
    #[error("{0}")]
    NoDevice(String),
    #[error("state directory: {0}")]
    State(#[from] std::io::Error),
    #[error("{0}")]
    Clock(#[from] ClockError),
    #[error(
        "HEADROOM_FAKE_FREEZE_AT is set: virtual time stands still, so a job would never progress"
    )]
    Frozen,
}

fn describe_env(key: &str) -> &'static str {
    match key {
        crate::ENV_SCENARIO => "the scenario file to play",
        crate::ENV_STATE_DIR => "the state directory shared with the fake NVML",
        _ => "required",
    }
}

/// Everything a job needs to run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub scenario: Scenario,
    pub state: StateDir,
    pub clock: Clock,
    pub device: DeviceRef,
    pub workload: Workload,
    pub overrun: f64,
    /// Workload second from which `overrun` applies.
    pub overrun_from: f64,
    pub name: String,
    /// MPS client limit for its device: (bytes, the variable's raw value).
    pub limit: Option<(u64, String)>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        virtual_s: f64,
        wall: Duration,
        peak: u64,
    },
    OutOfMemory(OomReport),
}

impl JobConfig {
    /// Builds the configuration from flags and environment, loading the scenario.
    pub fn from_parts(args: args::JobArgs, env: args::JobEnv) -> Result<Self, JobError> {
        let scenario = Scenario::load(&env.scenario)?;
        let workload = scenario.workload(&args.workload).cloned().ok_or_else(|| {
            JobError::UnknownWorkload {
                name: args.workload.clone(),
                known: scenario.workloads.iter().map(|w| w.name.clone()).collect(),
            }
        })?;
        let device = args::select_device(&scenario, env.visible_devices.as_deref())?;
        let state = StateDir::open(&env.state_dir)?;
        let clock = Clock::from_env(scenario.time_scale, Some(state.root()))?;
        if clock.is_frozen() {
            return Err(JobError::Frozen);
        }
        // The limit's ordinal 0 is the first visible device: the one the job runs on.
        let limit = env
            .mps_limit
            .and_then(|(raw, parsed)| parsed.for_device(0).map(|b| (b, raw)));
        Ok(Self {
            scenario,
            state,
            clock,
            device,
            workload,
            overrun: args.overrun,
            overrun_from: args.overrun_from,
            name: args.name,
            limit,
        })
    }

    fn device_uuid(&self) -> String {
        self.scenario
            .device_uuid(self.device)
            .unwrap_or_default()
            .to_string()
    }

    /// A one-line description of where the job runs, for its start message.
    pub fn describe(&self) -> String {
        let place = match self.device {
            DeviceRef::Gpu(g) => format!("GPU {g}"),
            DeviceRef::Mig { gpu, slot } => match self.scenario.mig(gpu, slot) {
                Some(m) => format!(
                    "GPU {gpu} MIG {} (GI {}, CI {})",
                    m.profile.name, m.gpu_instance_id, m.compute_instance_id
                ),
                None => format!("GPU {gpu} MIG slot {slot}"),
            },
        };
        let mps = if self.scenario.is_mps(self.device) {
            ", MPS client"
        } else {
            ""
        };
        let limit = match &self.limit {
            Some((b, _)) => format!(", limit {}", Bytes(*b)),
            None => String::new(),
        };
        format!("{} ({place}{mps}{limit})", self.device_uuid())
    }

    /// Wall time between steps: half a virtual second, within 5..250 ms.
    pub fn tick(&self) -> Duration {
        self.clock
            .to_wall(0.5)
            .clamp(Duration::from_millis(5), Duration::from_millis(250))
    }
}

/// Runs the job to its end or its out-of-memory failure. The registry entry is removed in
/// both cases.
pub fn run(cfg: &JobConfig) -> Result<Outcome, JobError> {
    let pid = std::process::id();
    let mut entry = LiveJob {
        pid,
        start_ticks: process_start_ticks(pid),
        device_uuid: cfg.device_uuid(),
        memory_bytes: 0,
        name: cfg.name.clone(),
        mps: cfg.scenario.is_mps(cfg.device),
        workload: cfg.workload.name.clone(),
        memory_limit_bytes: cfg.limit.as_ref().map(|l| l.0),
    };
    {
        let _lock = cfg.state.lock()?;
        cfg.state.write(&entry)?;
    }
    let result = follow(cfg, &mut entry);
    let _ = cfg.state.remove(pid);
    result
}

fn follow(cfg: &JobConfig, entry: &mut LiveJob) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let start_v = cfg.clock.now();
    let duration = cfg.workload.duration_s();
    let slow = cfg.scenario.device_slowdown(cfg.device);
    let mut last = start_v;
    let mut progress = 0.0;
    let mut peak = 0;
    loop {
        let now = cfg.clock.now();
        let dt = (now - last).max(0.0);
        last = now;
        if dt > 0.0 {
            let jobs = cfg.state.jobs()?;
            let n = cfg
                .scenario
                .processes_at(now, &jobs)
                .iter()
                .filter(|p| p.contends && p.on(cfg.device))
                .count();
            progress += dt / (cfg.scenario.contention.factor(n) * slow);
        }
        let done = progress >= duration;
        let at = progress.min(duration);
        let factor = if at >= cfg.overrun_from {
            cfg.overrun
        } else {
            1.0
        };
        let target = (cfg.workload.timeline.at_clamped(at) * factor)
            .max(0.0)
            .round() as u64;
        if target != entry.memory_bytes {
            let _lock = cfg.state.lock()?;
            if target > entry.memory_bytes
                && let Some(report) = check_allocation(cfg, entry, target, now)?
            {
                return Ok(Outcome::OutOfMemory(report));
            }
            entry.memory_bytes = target;
            cfg.state.write(entry)?;
        }
        peak = peak.max(entry.memory_bytes);
        if done {
            return Ok(Outcome::Finished {
                virtual_s: cfg.clock.now() - start_v,
                wall: started.elapsed(),
                peak,
            });
        }
        std::thread::sleep(cfg.tick());
    }
}

/// Under the registry lock: can the job grow to `target` bytes? `Some(report)` if not.
fn check_allocation(
    cfg: &JobConfig,
    entry: &LiveJob,
    target: u64,
    now: f64,
) -> Result<Option<OomReport>, JobError> {
    let jobs = cfg.state.jobs()?;
    let others: Vec<(u32, u64)> = cfg
        .scenario
        .processes_at(now, &jobs)
        .iter()
        .filter(|p| p.on(cfg.device) && p.pid != entry.pid)
        .map(|p| (p.pid, p.used))
        .collect();
    let tried = target - entry.memory_bytes;
    if let Some((limit, raw)) = &cfg.limit
        && target > *limit
    {
        return Ok(Some(OomReport {
            tried,
            capacity: *limit,
            free: limit.saturating_sub(entry.memory_bytes),
            this_pid: entry.pid,
            this_used: entry.memory_bytes,
            others,
            mps_limit: Some((*limit, raw.clone())),
        }));
    }
    let capacity = cfg.scenario.capacity(cfg.device);
    let used_by_others: u64 = others.iter().map(|o| o.1).sum();
    if used_by_others.saturating_add(target) > capacity {
        return Ok(Some(OomReport {
            tried,
            capacity,
            free: capacity.saturating_sub(used_by_others + entry.memory_bytes),
            this_pid: entry.pid,
            this_used: entry.memory_bytes,
            others,
            mps_limit: None,
        }));
    }
    Ok(None)
}
