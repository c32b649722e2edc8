//! The makespan model the planner asks for predicted makespans: one call per slot of an
//! option (a MIG GPU instance or compute instance, or the whole GPU under MPS) with the jobs
//! assigned to it. The goodput simulator answers (`super::sim_model`); where it cannot say, the
//! estimate is unknown and the planner prints `—` (JSON `null`), never a made-up number.

use super::workloads::Workload;
use serde::Serialize;

/// How a slot runs its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SliceMode {
    /// One job at a time, in the listed order (a MIG GPU or compute instance).
    Exclusive,
    /// Concurrently under MPS with Headroom's admission control, in the listed (FIFO) order.
    Mps,
}

/// One slot and the jobs assigned to it.
#[derive(Debug, Clone, Copy)]
pub struct Slice<'a> {
    /// Memory the slot's jobs may use, bytes.
    pub capacity_bytes: u64,
    /// The slot's share of the whole GPU's SMs, in (0, 1].
    pub sm_share: f64,
    pub mode: SliceMode,
    /// The jobs in the order they are queued (a workload appears once per job).
    pub workloads: &'a [&'a Workload],
}

/// What a model predicts for one slot; `None` where it cannot say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Seconds until the slot's last job ends, all jobs queued at time 0.
    pub makespan_s: Option<f64>,
    /// Most jobs running at once (MPS slots under admission).
    pub peak_concurrency: Option<u32>,
}

/// Predicts a slot's makespan.
pub trait MakespanModel {
    fn estimate(&self, slice: &Slice<'_>) -> Estimate;
}

/// Any `Fn(&Slice) -> Estimate` is a model.
impl<F: Fn(&Slice<'_>) -> Estimate> MakespanModel for F {
    fn estimate(&self, slice: &Slice<'_>) -> Estimate {
        self(slice)
    }
}

/// No model: every estimate unknown (for the tests of the placement logic).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NoModel;

#[cfg(test)]
impl MakespanModel for NoModel {
    fn estimate(&self, _slice: &Slice<'_>) -> Estimate {
        Estimate::default()
    }
}
