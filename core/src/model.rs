//! The GPU model that collectors fill and renderers read: one [`Snapshot`] per collection
//! cycle with its GPUs, their MIG instances and their processes.
//!
//! Every value NVML (or the host) may fail to give is an `Option`: `None` means unknown and
//! is rendered as an absent series, never as 0.

use serde::Serialize;

/// Memory of a GPU or MIG instance, in bytes (as `nvmlDeviceGetMemoryInfo_v2` reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub total: u64,
    /// Kept by the driver for itself; never available to processes.
    pub reserved: u64,
    pub used: u64,
}

impl Memory {
    /// What processes can use at most: `total - reserved` (CUDA's "total capacity").
    pub fn capacity(&self) -> u64 {
        self.total.saturating_sub(self.reserved)
    }

    /// Bytes still allocatable: `total - reserved - used`, saturating.
    pub fn free(&self) -> u64 {
        self.capacity().saturating_sub(self.used)
    }
}

/// Engine activity over the last sampling window, as ratios in `0.0..=1.0` (from GPM, or
/// from DCGM's profiling fields with the DCGM backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Activity {
    pub graphics: Option<f64>,
    pub sm: Option<f64>,
    pub tensor: Option<f64>,
    /// Device-memory interface activity (DCGM's `DRAM_ACTIVE`; GPM's is not read).
    pub dram: Option<f64>,
}

/// One MIG device (a compute instance inside a GPU instance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigInstance {
    pub uuid: String,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    /// Profile name as NVML reports it, e.g. `3g.40gb`.
    pub profile: Option<String>,
    pub memory: Option<Memory>,
    pub activity: Activity,
}

/// Where a process runs on the host: its container and pod, when known. `container_id` and
/// `pod_uid` come from its cgroup; `pod`, `namespace` and `container` (the container's name in
/// its pod) from the kubelet's pod-resources API (`headroom-kubelet`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub container: Option<String>,
}

/// A process with a compute context on a GPU (or on one of its MIG instances).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub name: Option<String>,
    pub used_memory: Option<u64>,
    /// Listed by NVML as an MPS client.
    pub mps: bool,
    /// The MIG instance it runs in, when the GPU is in MIG mode.
    pub mig_uuid: Option<String>,
    /// Its `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` for this device, when readable.
    pub mps_memory_limit: Option<u64>,
    /// `HEADROOM_WORKLOAD` from its environment (set by the sidecar), when readable.
    pub workload: Option<String>,
    pub attribution: Attribution,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub name: Option<String>,
    pub mig_mode: Option<bool>,
    pub memory: Option<Memory>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub sm_clock_hertz: Option<f64>,
    /// NVML's coarse utilization (fraction of time a kernel ran); not on MIG-enabled GPUs.
    pub utilization: Option<f64>,
    pub activity: Activity,
    pub mig_instances: Vec<MigInstance>,
    pub processes: Vec<GpuProcess>,
    /// Whether the process listing of this GPU succeeded in this cycle (a failed listing
    /// must not be read as "every process left").
    pub processes_complete: bool,
}

impl Gpu {
    /// A GPU known only by its identity; every measurement unknown.
    pub fn new(index: u32, uuid: String, name: Option<String>) -> Self {
        Self {
            index,
            uuid,
            name,
            mig_mode: None,
            memory: None,
            temperature_celsius: None,
            power_watts: None,
            sm_clock_hertz: None,
            utilization: None,
            activity: Activity::default(),
            mig_instances: Vec::new(),
            processes: Vec::new(),
            processes_complete: false,
        }
    }

    /// The MIG instance with this UUID.
    pub fn mig(&self, uuid: &str) -> Option<&MigInstance> {
        self.mig_instances.iter().find(|m| m.uuid == uuid)
    }
}

/// Everything one collection cycle learned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    pub driver_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

impl Snapshot {
    /// The GPU with this UUID.
    pub fn gpu(&self, uuid: &str) -> Option<&Gpu> {
        self.gpus.iter().find(|g| g.uuid == uuid)
    }
}
