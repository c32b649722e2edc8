//! Headroom's core: the GPU model shared by the exporter and the sidecar, the NVML backend
//! and the DCGM backend (the only modules with FFI: `nvml::raw`, `dcgm::raw`), the collectors, OOM inference, host attribution
//! (procfs: MPS limits, cgroups), units, the built-in MIG profile tables, and the small pieces
//! both binaries share (logging, `--simulate`).
#![deny(unsafe_code)]

pub mod cgroup;
pub mod collect;
pub mod contention;
pub mod dcgm;
pub mod log;
pub mod mig_profiles;
pub mod model;
pub mod mps;
pub mod nvml;
pub mod oom;
pub mod procfs;
pub mod simulate;
pub mod units;
