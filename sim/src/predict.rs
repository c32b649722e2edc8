//! Makespan predictions for the planner (`headroom-sidecar plan`): one device (a whole GPU
//! or a MIG instance) with a list of jobs all queued at time 0, each following a workload's
//! learned profile exactly (no noise), either one at a time or concurrently under MPS with
//! Headroom's admission core deciding the starts.

use crate::compare::peak_concurrency;
use crate::engine::{End, Record, Sim, Slot};
use crate::policy::headroom::{Headroom, Knowledge};
use crate::policy::simple::Sequential;
use crate::scenario::{Arrivals, Contention, Gpu, Noise, Scenario, Workload};
use headroom_admission::Profile;

/// The contention model calibrated on the seeds' H100 measurements (`docs/benchmarks.md`):
/// MPS slowdown 1.69 for two processes and 2.6 for three; a MIG slice with SM share `s`
/// runs at `s^0.66`.
pub fn seed_contention() -> Contention {
    Contention {
        mps: headroom_core::contention::Contention::new(vec![1.0, 1.69, 2.6]),
        mig_speed_exponent: 0.66,
    }
}

/// What runs on one device.
#[derive(Debug, Clone)]
pub struct Device<'a> {
    /// Memory the jobs may use, bytes.
    pub capacity: u64,
    /// Share of the whole GPU's SMs, in (0, 1].
    pub sm_share: f64,
    /// Concurrently under MPS with admission (`true`) or one job at a time.
    pub concurrent: bool,
    /// The jobs, in queue order.
    pub jobs: &'a [&'a Profile],
}

/// A predicted run of one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Seconds from the start until the last job ends.
    pub makespan_s: f64,
    /// Most jobs running at once.
    pub peak_concurrency: u32,
}

/// Simulates `device`; `None` when some job cannot finish there (it does not fit, or ran out
/// of memory).
pub fn predict(contention: &Contention, device: &Device<'_>) -> Option<Prediction> {
    if device.jobs.is_empty()
        || device.capacity == 0
        || device.sm_share.is_nan()
        || device.sm_share <= 0.0
    {
        return None;
    }
    let mut workloads: Vec<Workload> = Vec::new();
    let mut arrivals = Vec::new();
    for p in device.jobs {
        let idx = match workloads.iter().position(|w| w.name == p.name()) {
            Some(i) => i,
            None => {
                workloads.push(timeline_of(p));
                workloads.len() - 1
            }
        };
        arrivals.push((0.0, idx));
    }
    let scenario = Scenario {
        name: "planner".into(),
        description: String::new(),
        gpu: Gpu {
            name: "device".into(),
            memory_total: device.capacity,
            memory_reserved: 0,
            unmanaged: 0,
            sm_count: 1,
            mig: None,
        },
        contention: contention.clone(),
        noise: Noise {
            duration: 0.0,
            peak: 0.0,
        },
        workloads,
        arrivals: Arrivals::Batch(arrivals),
        sample_s: 1.0,
        staggers_s: Vec::new(),
        margin: 0.10,
    };
    let jobs = scenario.jobs(0);
    let slot = Slot {
        name: "device".into(),
        capacity: device.capacity,
        speed: if device.sm_share >= 1.0 {
            1.0
        } else {
            contention.mig_speed(device.sm_share)
        },
        unmanaged: 0,
    };
    let sim = Sim::new(&scenario, &jobs, vec![slot], Record::default());
    let result = if device.concurrent {
        let knowledge = Knowledge {
            profiles: device
                .jobs
                .iter()
                .map(|p| (p.name().to_string(), (*p).clone()))
                .collect(),
            runs: Default::default(),
        };
        sim.run(&mut Headroom::new(&scenario, knowledge))
    } else {
        sim.run(&mut Sequential)
    };
    if result
        .jobs
        .iter()
        .any(|j| j.outcome != Some(End::Completed))
    {
        return None;
    }
    Some(Prediction {
        makespan_s: result.end_time,
        peak_concurrency: peak_concurrency(&result),
    })
}

/// A profile's envelope (steps over normalized progress) as a piecewise-linear timeline over
/// solo seconds: each step held until just before the next one.
fn timeline_of(p: &Profile) -> Workload {
    let steps = p.solo_steps();
    let d = p.duration_s();
    let mut points: Vec<(f64, u64)> = Vec::with_capacity(steps.len() * 2);
    for (i, &(t, b)) in steps.iter().enumerate() {
        points.push((t, b));
        let next = steps.get(i + 1).map_or(d, |s| s.0);
        let hold = if steps.get(i + 1).is_some() {
            next - ((next - t) / 2.0).min(0.5)
        } else {
            next
        };
        if hold > t {
            points.push((hold, b));
        }
    }
    Workload {
        name: p.name().to_string(),
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headroom_admission::Stretch;

    const GIB: u64 = 1 << 30;

    fn ti2v() -> Profile {
        Profile::from_solo_steps(
            "ti2v-5b",
            242.0,
            &[(0.0, 22 * GIB), (211.0, 34 * GIB)],
            Stretch::PRIOR,
            10,
        )
        .unwrap()
    }

    #[test]
    fn one_at_a_time_on_a_slice_and_under_admission_on_the_whole_gpu() {
        let p = ti2v();
        let c = seed_contention();
        // Two on one 3g.40gb-sized slice, one at a time: 2 x 242 s at 0.4545^0.66.
        let two = [&p, &p];
        let slice = predict(
            &c,
            &Device {
                capacity: 40 * GIB,
                sm_share: 60.0 / 132.0,
                concurrent: false,
                jobs: &two,
            },
        )
        .unwrap();
        let expect = 2.0 * 242.0 / (60.0f64 / 132.0).powf(0.66);
        assert!(
            (slice.makespan_s - expect).abs() < 3.0,
            "{slice:?} vs {expect}"
        );
        assert_eq!(slice.peak_concurrency, 1);
        // Three on a whole H100 under admission: never all three at their peak, all finish,
        // sooner than one after another.
        let three = [&p, &p, &p];
        let gpu = predict(
            &c,
            &Device {
                capacity: 81079 << 20,
                sm_share: 1.0,
                concurrent: true,
                jobs: &three,
            },
        )
        .unwrap();
        assert!(gpu.makespan_s < 3.0 * 242.0, "{gpu:?}");
        assert!(gpu.peak_concurrency >= 2, "{gpu:?}");
        // A job larger than the device cannot finish there.
        assert!(
            predict(
                &c,
                &Device {
                    capacity: 20 * GIB,
                    sm_share: 1.0,
                    concurrent: true,
                    jobs: &[&p],
                },
            )
            .is_none()
        );
    }
}
