//! Headroom: the sidecar's own admission core (`headroom-admission`), driven in virtual time
//! the way `headroom-sidecar serve` drives it in wall time: every arrival is enqueued; at
//! every sampling tick the device's used memory and each admitted process's usage are
//! observed and `decide` runs; admitted processes start with the MPS memory limit the core
//! chose; every ended run is recorded (samples, co-runners, outcome, the allocation an OOM
//! attempted) and the workload's profile is re-learned from its last runs with
//! `headroom_admission::learn`, exactly as the daemon does.

use crate::engine::{Ctx, End, Ended, Policy, Start};
use crate::scenario::{Job, Scenario};
use headroom_admission::{
    Admission, Config, Decision, Device, DeviceReading, LearnConfig, Observation, Outcome,
    ProcessReading, Profile, Request, RequestId, Run, learn,
};
use std::collections::BTreeMap;

/// Runs per workload a profile is learned from (the daemon's `HISTORY`).
const HISTORY: usize = 10;

/// Learned state that carries from one run to the next (warm start).
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    pub profiles: BTreeMap<String, Profile>,
    pub runs: BTreeMap<String, Vec<Run>>,
}

#[derive(Debug)]
pub struct Headroom<'a> {
    scenario: &'a Scenario,
    admission: Admission,
    device: String,
    pub knowledge: Knowledge,
    /// Jobs admitted without a profile of their workload (first runs).
    pub admitted_unknown: Vec<usize>,
    workload_of: BTreeMap<usize, String>,
}

impl<'a> Headroom<'a> {
    pub fn new(scenario: &'a Scenario, knowledge: Knowledge) -> Self {
        let device = "gpu".to_string();
        let config = Config {
            margin: scenario.margin,
            ..Config::default()
        };
        let admission = Admission::new(
            config,
            vec![Device {
                id: device.clone(),
                capacity: scenario.gpu.capacity(),
                reserve: 0,
            }],
        );
        Headroom {
            scenario,
            admission,
            device,
            knowledge,
            admitted_unknown: Vec::new(),
            workload_of: BTreeMap::new(),
        }
    }
}

impl Policy for Headroom<'_> {
    fn arrived(&mut self, job: &Job, now: f64) {
        let workload = self.scenario.workload_name(job).to_string();
        self.workload_of.insert(job.id, workload.clone());
        let req = Request {
            id: RequestId(job.id as u64),
            workload,
            declared_peak: None,
            device: None,
        };
        // Every scenario workload fits the GPU it is declared for; a refusal leaves the job
        // waiting forever, which the report shows as never started.
        let _refused = self.admission.enqueue(req, now);
    }

    fn observed(&mut self, now: f64, ctx: &Ctx<'_>) {
        let managed: u64 = ctx.running.iter().map(|r| r.used).sum();
        let unmanaged = ctx.slots.first().map_or(0, |s| s.unmanaged);
        let obs = Observation {
            devices: vec![DeviceReading {
                device: self.device.clone(),
                used: Some(managed + unmanaged),
                unmanaged: None,
            }],
            processes: ctx
                .running
                .iter()
                .map(|r| ProcessReading {
                    id: RequestId(r.job as u64),
                    used: r.used,
                })
                .collect(),
        };
        self.admission.observe(&obs, now);
    }

    fn ended(&mut self, e: &Ended, now: f64) {
        let outcome = match e.end {
            End::Completed => Outcome::Completed,
            End::OomDevice | End::OomLimit => Outcome::Oom,
        };
        self.admission
            .finished(RequestId(e.job as u64), outcome, now);
        let Some(workload) = self.workload_of.remove(&e.job) else {
            return;
        };
        let runs = self.knowledge.runs.entry(workload.clone()).or_default();
        runs.push(Run {
            workload: workload.clone(),
            samples: e.samples.clone(),
            duration_s: e.ended - e.started,
            corunners: e.corunners.clone(),
            outcome,
            oom_attempted: e.attempted,
        });
        if runs.len() > HISTORY {
            runs.remove(0);
        }
        if let Some(p) = learn(&workload, runs, &LearnConfig::default()) {
            self.knowledge.profiles.insert(workload, p);
        }
    }

    fn decide(&mut self, now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        let decisions = self.admission.decide(now, &self.knowledge.profiles);
        let mut out = Vec::new();
        for d in decisions {
            let Decision::Admit {
                id, memory_limit, ..
            } = d;
            let job = id.0 as usize;
            let known = ctx.jobs.get(job).is_some_and(|j| {
                self.knowledge
                    .profiles
                    .contains_key(self.scenario.workload_name(j))
            });
            if !known {
                self.admitted_unknown.push(job);
            }
            out.push(Start {
                job,
                slot: 0,
                limit: Some(memory_limit),
            });
        }
        out
    }

    fn wake_at(&self) -> Option<f64> {
        self.admission.next_decision_at()
    }
}
