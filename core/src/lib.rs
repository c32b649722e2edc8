//! Headroom's core: the GPU model shared by the exporter and the sidecar, the NVML backend
//! (the only module with FFI: `nvml::raw`), the collectors, OOM inference, host attribution
//! (procfs: MPS limits, cgroups) and units.
#![deny(unsafe_code)]

pub mod cgroup;
pub mod collect;
pub mod model;
pub mod mps;
pub mod nvml;
pub mod oom;
pub mod procfs;
pub mod units;
