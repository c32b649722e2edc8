//! Property tests of the admission policy in virtual time (DESIGN.md "Admission"):
//! random arrivals of 2–4 workload kinds with TI2V/S2V-like profiles, contention that slows
//! every process (common factor per run, own jitter per process), true memory under the
//! profile's envelope with noise, declared peaks, unknown workloads, device restrictions,
//! cancellations and missing device readings. A simple loop calls enqueue / observe /
//! decide / finished like the sidecar does, and checks at every step:
//!
//! 1. Safety — at every admission, an independent forward simulation of the true state under
//!    every futures inside the model never exceeds capacity − reserve; and the true total
//!    never does at any moment.
//! 2. No starvation — every request is eventually admitted; a request admitted ahead of
//!    earlier ones never pushes back their predicted start.
//! 3. Unknown workloads — declared peaks are honoured as flat reservations; without one the
//!    first run gets no more than the largest known profile (or the device when idle).
//! 4. Limits — learned peak × (1 + margin), never more than what was reserved.
//! 5. Elastic time — covered by the truth model (slowdown with co-runners) and the checker.
//!
//! Also: no admission on a device whose memory reading is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
use common::*;
use headroom_admission::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Kind {
    name: String,
    known: bool,
    duration: f64,
    steps: Vec<(f64, u64)>,
    a: f64,
    spread: f64,
    jitter: f64,
}

impl Kind {
    fn peak(&self) -> u64 {
        self.steps.iter().map(|s| s.1).max().unwrap()
    }
    fn a_range(&self) -> (f64, f64) {
        ((self.a - self.spread).max(0.0), self.a + self.spread)
    }
    fn profile(&self) -> Profile {
        Profile::from_solo_steps(
            self.name.clone(),
            self.duration,
            &self.steps,
            Stretch {
                per_corunner: self.a,
                spread: self.spread,
                jitter: self.jitter,
            },
            10,
        )
        .unwrap()
    }
}

#[derive(Clone, Debug)]
struct JobSpec {
    kind: usize,
    arrival: f64,
    /// Declared peak as a factor ≥ 1 of the true peak.
    declare: Option<f64>,
    device: Option<usize>,
    eps: f64,
    noise: f64,
    /// Truth scale for unknown kinds (may exceed what they are given: they then fail alone).
    scale: f64,
    cancel_at: Option<f64>,
}

#[derive(Clone, Debug)]
struct Scenario {
    /// (capacity, device reserve, unmanaged)
    devices: Vec<(u64, u64, u64)>,
    cfg_reserve: u64,
    margin: f64,
    kinds: Vec<Kind>,
    theta: f64,
    jobs: Vec<JobSpec>,
    dropout: u64,
}

fn min_budget(devices: &[(u64, u64, u64)], cfg_reserve: u64) -> u64 {
    devices
        .iter()
        .map(|&(c, r, u)| c - r - cfg_reserve - u)
        .min()
        .unwrap()
}

fn kind_strategy(budget: u64, i: usize) -> impl Strategy<Value = Kind> {
    (
        60.0f64..260.0,
        0.1f64..0.55,
        0.0f64..0.4,
        0usize..3,
        0.05f64..0.3,
        0.4f64..0.9,
        0.02f64..0.15,
        0.0f64..0.04,
        prop::bool::weighted(0.85),
    )
        .prop_map(
            move |(duration, steady, extra, shape, frac, a, spread, jitter, known)| {
                let b = budget as f64;
                let s = (steady * b) as u64;
                let p = (((steady + extra) * b) as u64)
                    .min((0.95 * b) as u64)
                    .max(s);
                let steps = match shape {
                    0 => vec![(0.0, s), ((1.0 - frac) * duration, p)],
                    1 => vec![(0.0, s), (0.4 * duration, p), ((0.4 + frac) * duration, s)],
                    _ => vec![
                        (0.0, s / 2),
                        (0.1 * duration, s),
                        ((1.0 - frac) * duration, p),
                    ],
                };
                Kind {
                    name: format!("{}kind{i}", if known || i == 0 { "" } else { "mystery-" }),
                    known: known || i == 0,
                    duration,
                    steps,
                    a,
                    spread,
                    jitter,
                }
            },
        )
}

fn job_strategy(kinds: usize, devices: usize) -> impl Strategy<Value = JobSpec> {
    (
        0..kinds,
        prop_oneof![0.0f64..30.0, 0.0f64..400.0],
        prop::option::weighted(0.2, 1.0f64..1.2),
        prop::option::weighted(0.25, 0..devices),
        -1.0f64..1.0,
        0.0f64..0.05,
        0.5f64..1.3,
        prop::option::weighted(0.1, 0.0f64..600.0),
    )
        .prop_map(
            |(kind, arrival, declare, device, eps, noise, scale, cancel_at)| JobSpec {
                kind,
                arrival: (arrival * 2.0).round() / 2.0,
                declare,
                device,
                eps,
                noise,
                scale,
                cancel_at,
            },
        )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec((40u64..97, 0u64..2, 0u64..4), 1..3),
        0u64..2,
        prop::sample::select(vec![0.0, 0.05, 0.1, 0.2]),
    )
        .prop_flat_map(|(devs, cfg_reserve, margin)| {
            let devices: Vec<(u64, u64, u64)> = devs
                .iter()
                .map(|&(c, r, u)| (c * GIB, r * GIB / 2, u * GIB))
                .collect();
            let cfg_reserve = cfg_reserve * GIB / 2;
            let budget = min_budget(&devices, cfg_reserve);
            let n_dev = devices.len();
            (2usize..5).prop_flat_map(move |n_kinds| {
                let kinds: Vec<_> = (0..n_kinds).map(|i| kind_strategy(budget, i)).collect();
                let devices = devices.clone();
                (
                    kinds,
                    0.0f64..=1.0,
                    prop::collection::vec(job_strategy(n_kinds, n_dev), 3..10),
                    any::<u64>(),
                )
                    .prop_map(move |(kinds, theta, jobs, dropout)| Scenario {
                        devices: devices.clone(),
                        cfg_reserve,
                        margin,
                        kinds,
                        theta,
                        jobs,
                        dropout,
                    })
            })
        })
}

fn dev_id(d: usize) -> String {
    format!("GPU-{d}")
}

/// Deterministic "random" device reading failures (about 1 in 15 readings).
fn reading_missing(seed: u64, t: f64, d: usize) -> bool {
    let mut x = seed ^ ((t * 2.0) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (d as u64 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x.is_multiple_of(15)
}

struct Live {
    spec: usize,
    job: TrueJob,
    model: ModelJob,
}

fn run(sc: &Scenario) -> Result<(), TestCaseError> {
    let config = Config {
        margin: sc.margin,
        reserve: sc.cfg_reserve,
        horizon_step_s: 2.0,
        ..Config::default()
    };
    let devices: Vec<Device> = sc
        .devices
        .iter()
        .enumerate()
        .map(|(d, &(capacity, reserve, _))| Device {
            id: dev_id(d),
            capacity,
            reserve,
        })
        .collect();
    let budget: Vec<u64> = sc
        .devices
        .iter()
        .map(|&(c, r, u)| c - r - sc.cfg_reserve - u)
        .collect();
    let mut adm = Admission::new(config.clone(), devices);
    let profiles: BTreeMap<String, Profile> = sc
        .kinds
        .iter()
        .filter(|k| k.known)
        .map(|k| (k.name.clone(), k.profile()))
        .collect();
    let largest_known = profiles.values().map(Profile::peak).max().unwrap();

    let mut enqueued = vec![false; sc.jobs.len()];
    let mut cancelled = vec![false; sc.jobs.len()];
    let mut admitted = vec![false; sc.jobs.len()];
    let mut live: Vec<Live> = Vec::new();
    let mut done: Vec<Option<Outcome>> = vec![None; sc.jobs.len()];
    let mut missing = vec![false; sc.devices.len()];
    let dt = 1.0;
    let mut t = 0.0;
    let mut next_decide = 0.0;
    let mut staggered = 0usize;
    let mut backfills = 0usize;
    let horizon = 400.0
        + sc.jobs
            .iter()
            .map(|j| sc.kinds[j.kind].duration * 3.5)
            .sum::<f64>();
    while t < horizon {
        let mut event = false;
        // Ends: completion, or OOM at the MPS limit (only possible for unknown workloads).
        for l in live.iter_mut() {
            if l.job.alive() && l.job.done >= l.job.curve.duration - 1e-9 {
                l.job.finished = Some((t, Outcome::Completed));
                adm.finished(l.job.id, Outcome::Completed, t);
                done[l.spec] = Some(Outcome::Completed);
                event = true;
            } else if l.job.alive() && l.job.limit == 0 {
                l.job.finished = Some((t, Outcome::Oom));
                adm.finished(l.job.id, Outcome::Oom, t);
                done[l.spec] = Some(Outcome::Oom);
                event = true;
            }
        }
        for (i, j) in sc.jobs.iter().enumerate() {
            if !enqueued[i] && j.arrival <= t {
                enqueued[i] = true;
                event = true;
                let kind = &sc.kinds[j.kind];
                let req = Request {
                    id: RequestId(i as u64),
                    workload: kind.name.clone(),
                    declared_peak: j
                        .declare
                        .map(|f| ((kind.peak() as f64 * f) as u64).min(budget_of(&budget, j))),
                    device: j.device.map(dev_id),
                };
                prop_assert_eq!(adm.enqueue(req.clone(), t), Ok(()));
                prop_assert!(matches!(
                    adm.enqueue(req, t),
                    Err(RejectReason::DuplicateId(_))
                ));
            }
            if let Some(c) = j.cancel_at
                && enqueued[i]
                && !admitted[i]
                && !cancelled[i]
                && c <= t
            {
                cancelled[i] = true;
                event = true;
                adm.cancel(RequestId(i as u64));
                prop_assert!(adm.queue().iter().all(|q| q.id.0 != i as u64));
            }
        }
        // Observe.
        let mut obs = Observation::default();
        for (d, &(_, _, unmanaged)) in sc.devices.iter().enumerate() {
            missing[d] = reading_missing(sc.dropout, t, d);
            let used: u64 = live
                .iter()
                .filter(|l| l.job.alive() && l.job.device == d)
                .map(|l| l.job.curve.at(l.job.done).min(l.job.limit))
                .sum::<u64>()
                + unmanaged;
            obs.devices.push(DeviceReading {
                device: dev_id(d),
                used: (!missing[d]).then_some(used),
                unmanaged: None,
            });
        }
        for l in live.iter_mut().filter(|l| l.job.alive()) {
            let used = l.job.curve.at(l.job.done).min(l.job.limit);
            l.model.floor = used;
            obs.processes.push(ProcessReading { id: l.job.id, used });
        }
        adm.observe(&obs, t);

        if event || t >= next_decide - 1e-9 {
            let before = adm.preview(t, &profiles);
            staggered += before
                .iter()
                .filter(|q| q.reason == WaitReason::Stagger)
                .count();
            let idle = adm.running().is_empty();
            let decisions = adm.decide(t, &profiles);
            let after = adm.queue();
            // 2. When everything has drained and every device can be read, the head of the
            // queue starts (unless it is being held a bounded time to stagger peaks).
            if idle
                && !missing.iter().any(|m| *m)
                && before
                    .first()
                    .is_some_and(|h| h.reason != WaitReason::Stagger)
            {
                let head = before[0].id;
                prop_assert!(
                    decisions
                        .iter()
                        .any(|d| matches!(d, Decision::Admit { id, .. } if *id == head)),
                    "idle devices but head {} not admitted: {:?}",
                    head,
                    before
                );
            }
            for dec in &decisions {
                let Decision::Admit {
                    id,
                    device,
                    memory_limit,
                    predicted_peak,
                } = dec;
                let i = id.0 as usize;
                let d: usize = device[4..].parse().unwrap();
                let spec = &sc.jobs[i];
                let kind = &sc.kinds[spec.kind];
                prop_assert!(!admitted[i] && !cancelled[i]);
                prop_assert!(!missing[d], "admitted on device {} with no reading", d);
                if let Some(r) = spec.device {
                    prop_assert_eq!(r, d);
                }
                // 2. A request admitted ahead of earlier ones did not delay them.
                let pos = before.iter().position(|q| q.id == *id).unwrap();
                if before[..pos]
                    .iter()
                    .any(|e| after.iter().any(|a| a.id == e.id))
                {
                    backfills += 1;
                }
                for e in &before[..pos] {
                    if let Some(a) = after.iter().find(|a| a.id == e.id) {
                        let (old, new) = (e.predicted_start, a.predicted_start);
                        prop_assert!(
                            match (old, new) {
                                (None, _) => true,
                                (Some(_), None) => false,
                                (Some(o), Some(n)) => n <= o + 1e-6,
                            },
                            "admitting {} pushed {} from {:?} to {:?}",
                            id,
                            e.id,
                            old,
                            new
                        );
                    }
                }
                // 3 and 4: what it is held to and limited at.
                let declared = adm
                    .running()
                    .into_iter()
                    .find(|r| r.id == *id)
                    .map(|r| r.basis)
                    .unwrap();
                let (model, open) = match (&declared, kind.known) {
                    (Basis::Profile(_), true) => {
                        prop_assert!(spec.declare.is_none());
                        prop_assert_eq!(*predicted_peak, kind.peak());
                        let full = (kind.peak() as f64 * (1.0 + sc.margin)).ceil() as u64;
                        prop_assert!(*memory_limit <= full && *memory_limit >= kind.peak());
                        (kind.steps.clone(), false)
                    }
                    (Basis::Declared { peak, .. }, known) => {
                        prop_assert!(spec.declare.is_some());
                        prop_assert_eq!(*memory_limit, *peak);
                        prop_assert_eq!(*predicted_peak, *peak);
                        prop_assert!(*peak >= kind.peak());
                        (vec![(0.0, *peak)], !known)
                    }
                    (Basis::Provisional { bytes }, false) => {
                        prop_assert!(spec.declare.is_none());
                        prop_assert!(*memory_limit <= *bytes);
                        prop_assert!(*bytes <= largest_known.max(budget[d]));
                        prop_assert!(*bytes <= budget[d]);
                        (vec![(0.0, *bytes)], true)
                    }
                    other => {
                        prop_assert!(false, "unexpected basis {:?}", other);
                        unreachable!()
                    }
                };
                admitted[i] = true;
                let (a_min, a_max) = kind.a_range();
                let a_true = a_min + sc.theta * (a_max - a_min);
                let truth_steps: Vec<(f64, u64)> = kind
                    .steps
                    .iter()
                    .map(|&(s, b)| {
                        let b = b as f64 * (1.0 - spec.noise);
                        let b = if kind.known { b } else { b * spec.scale };
                        (s, b as u64)
                    })
                    .collect();
                live.push(Live {
                    spec: i,
                    job: TrueJob {
                        id: *id,
                        device: d,
                        curve: Curve {
                            steps: truth_steps,
                            duration: kind.duration,
                        },
                        a: a_true,
                        eps: spec.eps * kind.jitter,
                        done: 0.0,
                        start: t,
                        limit: *memory_limit,
                        finished: None,
                    },
                    model: ModelJob {
                        envelope: Curve {
                            steps: model,
                            duration: kind.duration,
                        },
                        done: 0.0,
                        a_min,
                        a_max,
                        jitter: kind.jitter,
                        floor: 0,
                        open,
                    },
                });
                // 1. Independent check: every future inside the model, from the true state
                // of the device's running processes plus the newcomer, stays in budget.
                let mut model_jobs: Vec<ModelJob> = Vec::new();
                for l in live.iter().filter(|l| l.job.alive() && l.job.device == d) {
                    model_jobs.push(ModelJob {
                        envelope: l.model.envelope.clone(),
                        done: l.job.done,
                        a_min: l.model.a_min,
                        a_max: l.model.a_max,
                        jitter: l.model.jitter,
                        floor: l.model.floor,
                        open: l.model.open,
                    });
                }
                let n = model_jobs.len();
                let mut patterns: Vec<Vec<f64>> = vec![vec![1.0; n], vec![-1.0; n]];
                if n <= 4 {
                    patterns = (0..(1u32 << n))
                        .map(|m| {
                            (0..n)
                                .map(|b| if m >> b & 1 == 1 { 1.0 } else { -1.0 })
                                .collect()
                        })
                        .collect();
                } else {
                    for p in 0..6u32 {
                        patterns.push(
                            (0..n)
                                .map(|b| {
                                    if (p + b as u32).is_multiple_of(3) {
                                        1.0
                                    } else {
                                        -1.0
                                    }
                                })
                                .collect(),
                        );
                    }
                }
                for signs in &patterns {
                    let worst = worst_future(&model_jobs, sc.theta, signs, 0.5);
                    prop_assert!(
                        worst <= budget[d],
                        "admitting {} on {}: a future reaches {} > budget {} (signs {:?})",
                        id,
                        d,
                        worst,
                        budget[d],
                        signs
                    );
                }
            }
            next_decide = adm
                .next_decision_at()
                .unwrap_or(f64::INFINITY)
                .min(t + 15.0);
        }

        // The truth moves on; its total never exceeds the budget at any moment.
        for (d, &device_budget) in budget.iter().enumerate() {
            let mut refs: Vec<&mut TrueJob> = live
                .iter_mut()
                .filter(|l| l.job.device == d)
                .map(|l| &mut l.job)
                .collect();
            // A process that would go above its MPS limit fails alone (marked with limit 0).
            for j in refs.iter_mut().filter(|j| j.alive()) {
                if j.curve.max_over(j.done, j.done + dt) > j.limit {
                    j.limit = 0;
                }
            }
            let total = step_device(&mut refs, dt);
            prop_assert!(
                total <= device_budget,
                "device {} over budget at t={}: {} > {}",
                d,
                t,
                total,
                device_budget
            );
        }
        if enqueued.iter().all(|e| *e)
            && (0..sc.jobs.len()).all(|i| cancelled[i] || done[i].is_some())
        {
            if std::env::var("ADMISSION_STATS").is_ok() {
                let maxc = (0..sc.devices.len())
                    .map(|d| {
                        let mut ev: Vec<(f64, i32)> = live
                            .iter()
                            .filter(|l| l.job.device == d)
                            .flat_map(|l| [(l.job.start, 1), (l.job.finished.unwrap().0, -1)])
                            .collect();
                        ev.sort_by(|a, b| a.partial_cmp(b).unwrap());
                        let mut c = 0;
                        let mut m = 0;
                        for e in ev {
                            c += e.1;
                            m = m.max(c);
                        }
                        m
                    })
                    .max()
                    .unwrap();
                let waits: Vec<f64> = live
                    .iter()
                    .map(|l| l.job.start - sc.jobs[l.spec].arrival)
                    .collect();
                eprintln!(
                    "jobs {} devs {} admitted {} ooms {} cancelled {} maxconc {} waits>0 {} stagger {} backfill {} end {t}",
                    sc.jobs.len(),
                    sc.devices.len(),
                    live.len(),
                    done.iter().filter(|d| **d == Some(Outcome::Oom)).count(),
                    cancelled.iter().filter(|c| **c).count(),
                    maxc,
                    waits.iter().filter(|w| **w > 0.5).count(),
                    staggered.min(1),
                    backfills
                );
            }
            return Ok(());
        }
        t += dt;
    }
    let waiting: Vec<usize> = (0..sc.jobs.len())
        .filter(|&i| !cancelled[i] && done[i].is_none())
        .collect();
    prop_assert!(
        false,
        "starvation: {:?} not done by t={}; queue {:?}",
        waiting,
        t,
        adm.queue()
    );
    Ok(())
}

fn budget_of(budget: &[u64], j: &JobSpec) -> u64 {
    match j.device {
        Some(d) => budget[d],
        None => budget.iter().copied().max().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn policy_properties(sc in scenario()) {
        run(&sc)?;
    }
}
