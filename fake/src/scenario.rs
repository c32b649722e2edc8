//! The scenario file model: what fake GPUs exist, their MIG layout, the processes on them
//! and their memory over time, workload profiles for `fake-gpu-job`, contention, injected
//! NVML faults and Xid events. Files are TOML (`docs/scenarios.md`); loading checks every
//! field and reports all problems at once, each with its location
//! (`gpu[1].process[3]: pid 72221 used twice`).

mod raw;
mod validate;
mod validate_gpu;
mod values;

use crate::contention::Contention;
use crate::faults::Fault;
use crate::mig_profiles::{MigProfile, MigTable};
use crate::timeline::{MemoryTrack, Series, Timeline};
use crate::xid::XidSchedule;
use std::fmt;
use std::path::{Path, PathBuf};

/// GPU architecture, as NVML reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Architecture {
    Ampere,
    Hopper,
    Blackwell,
}

impl Architecture {
    /// `nvmlDeviceArchitecture_t` value (`NVML_DEVICE_ARCH_*`).
    pub fn nvml_code(self) -> u32 {
        match self {
            Self::Ampere => 7,
            Self::Hopper => 9,
            Self::Blackwell => 10,
        }
    }

    /// GPM (GPU performance monitoring) exists on Hopper and newer.
    pub fn has_gpm(self) -> bool {
        self >= Self::Hopper
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ampere" => Some(Self::Ampere),
            "hopper" => Some(Self::Hopper),
            "blackwell" => Some(Self::Blackwell),
            _ => None,
        }
    }
}

/// Engine activity ratios (0..1) of a GPU or MIG instance, as GPM reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub graphics: Series,
    pub sm: Series,
    pub tensor: Series,
    /// Memory-interface activity (only the fake DCGM serves it).
    pub dram: Series,
}

/// Which activity metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Graphics,
    Sm,
    Tensor,
    Dram,
}

impl Activity {
    /// The series of one metric.
    pub fn series(&self, kind: ActivityKind) -> &Series {
        match kind {
            ActivityKind::Graphics => &self.graphics,
            ActivityKind::Sm => &self.sm,
            ActivityKind::Tensor => &self.tensor,
            ActivityKind::Dram => &self.dram,
        }
    }
}

/// Sensor-like values of a GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub temperature_c: Series,
    pub power_w: Series,
    pub sm_clock_mhz: Series,
    pub mem_clock_mhz: Series,
    /// `None`: derived from graphics activity × 100.
    pub utilization_percent: Option<Series>,
    pub memory_utilization_percent: Series,
}

/// One MIG instance (a GPU instance with one compute instance).
#[derive(Debug, Clone, PartialEq)]
pub struct MigInstance {
    /// Position on its GPU: the MIG device index NVML uses.
    pub slot: usize,
    pub profile: &'static MigProfile,
    pub uuid: String,
    pub gpu_instance_id: u32,
    pub compute_instance_id: u32,
    /// First memory slice it occupies (computed from the placement rules).
    pub placement_start: u32,
    /// An MPS daemon runs inside the instance: live jobs there are MPS clients.
    pub mps: bool,
    /// Jobs in this instance run this much slower than alone on the whole GPU.
    pub slowdown: f64,
    pub activity: Activity,
}

/// A process listed by the fake NVML whatever runs on the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticProcess {
    pub pid: u32,
    pub name: String,
    /// Listed as an MPS client (`nvmlDeviceGetMPSComputeRunningProcesses_v3`).
    pub mps: bool,
    /// Slot of the MIG instance it runs in.
    pub mig: Option<usize>,
    pub memory: MemoryTrack,
    /// Counts as a co-runner for contention (false for daemons such as the MPS server).
    pub contends: bool,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub index: usize,
    pub name: String,
    pub uuid: String,
    pub memory_total: u64,
    /// Memory the driver keeps for itself; CUDA's "total capacity" is total − reserved.
    pub memory_reserved: u64,
    pub sm_count: u32,
    pub architecture: Architecture,
    /// An MPS daemon runs on the whole GPU: live jobs there are MPS clients.
    pub mps: bool,
    pub telemetry: Telemetry,
    /// Whole-GPU activity; `None` on a MIG GPU means "derived from the instances".
    pub activity: Option<Activity>,
    pub mig_mode: bool,
    pub mig_table: Option<&'static MigTable>,
    pub migs: Vec<MigInstance>,
    pub processes: Vec<StaticProcess>,
}

/// A memory-over-time profile a `fake-gpu-job` can play.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    /// Bytes over seconds since the job started; the job ends at the last point.
    pub timeline: Timeline,
}

impl Workload {
    /// How long the workload runs alone, virtual seconds.
    pub fn duration_s(&self) -> f64 {
        self.timeline.end()
    }

    /// Its peak memory, bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.timeline.max_value().max(0.0).round() as u64
    }
}

/// CUDA driver version (`13.0` → major 13, minor 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaVersion {
    /// As `nvmlSystemGetCudaDriverVersion_v2` encodes it (13.0 → 13000).
    pub fn encoded(self) -> i32 {
        (self.major * 1000 + self.minor * 10) as i32
    }
}

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub driver_version: String,
    pub cuda_version: CudaVersion,
    /// Virtual seconds per wall second.
    pub time_scale: f64,
    pub gpus: Vec<Gpu>,
    pub workloads: Vec<Workload>,
    pub contention: Contention,
    pub faults: Vec<Fault>,
    pub xids: XidSchedule,
}

/// One thing wrong with a scenario, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// E.g. `gpu[1].process[3]`, `workload[0].timeline`, `line 12, column 5`.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {}: {}", origin, join(problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ScenarioError {
    /// The problems found (empty for read errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => problems,
            Self::Read { .. } => &[],
        }
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Scenario {
    /// Reads and validates the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let invalid = |problems| ScenarioError::Invalid {
            origin: origin.to_string(),
            problems,
        };
        let raw: raw::RawScenario =
            toml::from_str(text).map_err(|e| invalid(vec![parse_problem(text, &e)]))?;
        validate::validate(raw).map_err(invalid)
    }

    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }
}

fn parse_problem(text: &str, e: &toml::de::Error) -> Problem {
    let at = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }
        None => "file".to_string(),
    };
    Problem {
        at,
        message: e.message().trim().replace('\n', " "),
    }
}

#[cfg(test)]
mod tests;
