//! The planner's makespan model: the goodput simulator (`headroom_sim::predict`) with the
//! contention model calibrated on the seeds' H100 measurements (MPS slowdown 1.69 for two
//! processes, 2.6 for three; a MIG slice with SM share `s` runs at `s^0.66`). A slot with a
//! workload that has no memory-over-time profile (an inline `name=N@PEAK`) gets no estimate.

use super::model::{Estimate, MakespanModel, Slice, SliceMode};
use headroom_admission::Profile;
use headroom_sim::predict::{Device, predict, seed_contention};
use headroom_sim::scenario::Contention;

/// Predicts with the goodput simulator.
#[derive(Debug, Clone)]
pub struct SimModel {
    contention: Contention,
}

impl Default for SimModel {
    fn default() -> Self {
        SimModel {
            contention: seed_contention(),
        }
    }
}

impl MakespanModel for SimModel {
    fn estimate(&self, slice: &Slice<'_>) -> Estimate {
        let Some(profiles) = slice
            .workloads
            .iter()
            .map(|w| w.profile.as_ref())
            .collect::<Option<Vec<&Profile>>>()
        else {
            return Estimate::default();
        };
        let device = Device {
            capacity: slice.capacity_bytes,
            sm_share: slice.sm_share,
            concurrent: slice.mode == SliceMode::Mps,
            jobs: &profiles,
        };
        match predict(&self.contention, &device) {
            Some(p) => Estimate {
                makespan_s: Some(p.makespan_s),
                peak_concurrency: Some(p.peak_concurrency),
            },
            None => Estimate::default(),
        }
    }
}
