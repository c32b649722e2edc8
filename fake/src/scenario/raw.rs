//! The scenario file exactly as written (serde, unknown fields refused). Fields that take
//! "a number or a timeline" or "a size or a timeline" stay TOML values here; validation
//! turns them into typed series with precise error locations.

use serde::Deserialize;
use toml::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub driver_version: String,
    #[serde(default)]
    pub cuda_version: Option<String>,
    #[serde(default)]
    pub clock: Option<RawClock>,
    #[serde(default, rename = "gpu")]
    pub gpus: Vec<RawGpu>,
    #[serde(default, rename = "workload")]
    pub workloads: Vec<RawWorkload>,
    #[serde(default)]
    pub contention: Option<RawContention>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<RawFault>,
    #[serde(default, rename = "xid")]
    pub xids: Vec<RawXid>,
    #[serde(default, rename = "xid_storm")]
    pub xid_storms: Vec<RawXidStorm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClock {
    #[serde(default)]
    pub time_scale: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGpu {
    pub name: String,
    pub uuid: String,
    pub memory_total: String,
    #[serde(default)]
    pub memory_reserved: Option<String>,
    pub sm_count: u32,
    pub architecture: String,
    #[serde(default)]
    pub mps: bool,
    #[serde(default)]
    pub temperature_c: Option<Value>,
    #[serde(default)]
    pub power_w: Option<Value>,
    #[serde(default)]
    pub sm_clock_mhz: Option<Value>,
    #[serde(default)]
    pub mem_clock_mhz: Option<Value>,
    #[serde(default)]
    pub utilization_percent: Option<Value>,
    #[serde(default)]
    pub memory_utilization_percent: Option<Value>,
    #[serde(default)]
    pub graphics_active: Option<Value>,
    #[serde(default)]
    pub sm_active: Option<Value>,
    #[serde(default)]
    pub tensor_active: Option<Value>,
    /// Memory-interface activity, served by the fake DCGM only (`DCGM_FI_PROF_DRAM_ACTIVE`).
    #[serde(default)]
    pub dram_active: Option<Value>,
    #[serde(default)]
    pub mig_mode: bool,
    #[serde(default)]
    pub mig_profiles: Option<String>,
    #[serde(default, rename = "mig")]
    pub migs: Vec<RawMig>,
    #[serde(default, rename = "process")]
    pub processes: Vec<RawProcess>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMig {
    pub profile: String,
    pub uuid: String,
    pub gpu_instance_id: u32,
    #[serde(default)]
    pub compute_instance_id: u32,
    #[serde(default)]
    pub mps: Option<bool>,
    #[serde(default)]
    pub slowdown: Option<f64>,
    #[serde(default)]
    pub graphics_active: Option<Value>,
    #[serde(default)]
    pub sm_active: Option<Value>,
    #[serde(default)]
    pub tensor_active: Option<Value>,
    /// Memory-interface activity, served by the fake DCGM only (`DCGM_FI_PROF_DRAM_ACTIVE`).
    #[serde(default)]
    pub dram_active: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcess {
    pub pid: u32,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mps: bool,
    #[serde(default)]
    pub mig: Option<String>,
    #[serde(default)]
    pub memory: Option<Value>,
    #[serde(default)]
    pub workload: Option<String>,
    #[serde(default)]
    pub start_s: Option<f64>,
    #[serde(default)]
    pub repeat_every_s: Option<f64>,
    #[serde(default)]
    pub contends: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub name: String,
    pub timeline: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContention {
    pub mps_slowdown: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub call: String,
    #[serde(default)]
    pub gpu: Option<u32>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub from_s: Option<f64>,
    #[serde(default)]
    pub until_s: Option<f64>,
    #[serde(default)]
    pub hang_ms: Option<u64>,
    #[serde(default)]
    pub persistent: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawXid {
    pub gpu: u32,
    pub at_s: f64,
    pub xid: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawXidStorm {
    pub gpu: u32,
    pub from_s: f64,
    pub duration_s: f64,
    pub rate_per_s: f64,
    pub xid: u64,
}
