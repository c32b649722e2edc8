//! Headroom's core: the GPU model shared by the exporter and the sidecar, the NVML backend
//! (the only module with FFI), host attribution (procfs: MPS limits, cgroups), and units.
#![deny(unsafe_code)]

pub mod mps;
pub mod units;
