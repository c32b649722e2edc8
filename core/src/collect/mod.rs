//! Collectors: one per NVML source, registered in one place ([`Kind`]), each filling its part
//! of a [`Snapshot`] and reporting the calls that failed. A collector never aborts the cycle:
//! a failed call leaves its value unknown and is reported; "not supported" is not a failure.
//!
//! Order within a cycle: `device` first (it discovers GPUs and MIG instances and builds the
//! [`Topology`] the others use), then the rest.

mod dcgm;
mod device;
mod gpm;
mod process;
mod xid;

pub use dcgm::DcgmCollector;
pub use device::DeviceCollector;
pub use gpm::{GpmCollector, MIN_SPACING as GPM_MIN_SPACING};
pub use process::ProcessCollector;
pub use xid::{XidCounts, XidListener};

use crate::model::Snapshot;
use crate::nvml::{CallError, Device, NvmlBackend};
use nvml_wrapper::error::NvmlError;
use std::fmt;
use std::str::FromStr;

/// The collectors Headroom has, in cycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// GPU identity, MIG layout, memory, temperature, power, clocks, utilization.
    Device,
    /// Compute and MPS processes with host attribution; OOM inference builds on it.
    Process,
    /// GPM engine activity (Hopper and newer), per GPU and per MIG GPU instance.
    Gpm,
    /// Xid critical-error events.
    Xid,
    /// Engine activity from DCGM's profiling fields (the DCGM backend's stand-in for `gpm`;
    /// chosen with `--backend`, not listed in [`Kind::ALL`]).
    Dcgm,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Device, Kind::Process, Kind::Gpm, Kind::Xid];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::Process => "process",
            Kind::Gpm => "gpm",
            Kind::Xid => "xid",
            Kind::Dcgm => "dcgm",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown collector {s:?} (known: {})", names.join(", "))
            })
    }
}

/// Handles of one GPU for this cycle.
#[derive(Debug)]
pub struct GpuHandles<'n> {
    /// Position of this GPU in `Snapshot::gpus`.
    pub slot: usize,
    pub device: Device<'n>,
    /// MIG devices: (UUID, GPU-instance id, handle).
    pub mig: Vec<(String, Option<u32>, Device<'n>)>,
}

/// The device handles discovered in this cycle.
#[derive(Debug, Default)]
pub struct Topology<'n> {
    pub gpus: Vec<GpuHandles<'n>>,
}

/// What one collector run reports.
#[derive(Debug, Default)]
pub struct Outcome {
    pub errors: Vec<CallError>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.errors.is_empty()
    }

    /// Keeps an NVML result's value; records the error unless it only means "not supported".
    pub fn keep<T>(
        &mut self,
        call: &'static str,
        target: impl FnOnce() -> String,
        result: Result<T, NvmlError>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let err = CallError::new(call, Some(target()), &e);
                if !err.is_not_supported() {
                    self.errors.push(err);
                }
                None
            }
        }
    }
}

/// A collector that runs once per cycle on the sampler thread.
pub trait Collector<'n> {
    fn kind(&self) -> Kind;
    fn collect(
        &mut self,
        backend: &'n NvmlBackend,
        topology: &Topology<'n>,
        snapshot: &mut Snapshot,
    ) -> Outcome;
}
