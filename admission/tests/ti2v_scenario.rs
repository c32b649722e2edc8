//! The seeds' case: three Wan2.2 TI2V-5B on one H100 80GB (79.18 GiB usable), all asked for
//! at t = 0. Started together one OOMs (33.2 + 33.2 + 21.7 > 79.18 when two peaks meet);
//! started 60 s apart all finish. The policy must find a safe schedule by itself, with a
//! makespan no worse than the 60 s stagger under the same stretch model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
use common::*;
use headroom_admission::*;
use std::collections::BTreeMap;

const CAPACITY_GIB: f64 = 79.18;
const DURATION: f64 = 242.0;
const PEAK_AT: f64 = 211.0;
const A: f64 = 0.69;

fn ti2v_profile() -> Profile {
    Profile::from_solo_steps(
        "wan2.2-ti2v-5b",
        DURATION,
        &[(0.0, gib(21.7)), (PEAK_AT, gib(33.2))],
        // Learned from ten runs: contention factor 0.69 ± 0.1, runs within ± 2 %.
        Stretch {
            per_corunner: A,
            spread: 0.1,
            jitter: 0.02,
        },
        10,
    )
    .unwrap()
}

fn curve() -> Curve {
    Curve {
        steps: vec![(0.0, gib(21.7)), (PEAK_AT, gib(33.2))],
        duration: DURATION,
    }
}

/// Makespan and memory peak of given start times under the point stretch model
/// (rate 1/(1 + 0.69·k)), simulated in small steps independently of the crate.
fn point_model(starts: &[f64]) -> (f64, u64, Vec<f64>) {
    let dt = 0.01;
    let mut done = vec![0.0; starts.len()];
    let mut end = vec![f64::NAN; starts.len()];
    let mut peak = 0u64;
    let c = curve();
    let mut t = 0.0;
    while end.iter().any(|e| e.is_nan()) {
        let alive: Vec<usize> = (0..starts.len())
            .filter(|&i| starts[i] <= t + 1e-9 && end[i].is_nan())
            .collect();
        let k = alive.len().saturating_sub(1) as f64;
        let mut total = 0;
        for &i in &alive {
            let next = (done[i] + dt / (1.0 + A * k)).min(DURATION);
            total += c.max_over(done[i], next);
            done[i] = next;
            if done[i] >= DURATION - 1e-9 {
                end[i] = t + dt;
            }
        }
        peak = peak.max(total);
        t += dt;
    }
    (end.iter().cloned().fold(0.0, f64::max), peak, end)
}

struct Outcome3 {
    jobs: Vec<TrueJob>,
    log: Vec<String>,
    max_total: u64,
}

/// Runs the three requests through the policy in virtual time against the ground truth
/// (the profile's central stretch, no jitter), observing and deciding every 0.5 s.
fn run_three(config: Config) -> Outcome3 {
    let capacity = gib(CAPACITY_GIB);
    let mut adm = Admission::new(
        config,
        vec![Device {
            id: "GPU-h100".into(),
            capacity,
            reserve: 0,
        }],
    );
    let mut profiles = BTreeMap::new();
    profiles.insert("wan2.2-ti2v-5b".to_string(), ti2v_profile());
    for id in 1..=3 {
        adm.enqueue(
            Request {
                id: RequestId(id),
                workload: "wan2.2-ti2v-5b".into(),
                declared_peak: None,
                device: None,
            },
            0.0,
        )
        .unwrap();
    }
    let mut jobs: Vec<TrueJob> = Vec::new();
    let mut t = 0.0;
    let dt = 0.5;
    let mut max_total = 0u64;
    let mut log = Vec::new();
    while t < 3000.0 {
        for j in jobs.iter_mut() {
            if j.alive() && j.done >= DURATION - 1e-9 {
                j.finished = Some((t, Outcome::Completed));
                adm.finished(j.id, Outcome::Completed, t);
                log.push(format!("t={t:6.1}s  job {} finished", j.id));
            }
        }
        if jobs.len() == 3 && jobs.iter().all(|j| !j.alive()) {
            break;
        }
        let live: Vec<(RequestId, u64)> = jobs
            .iter()
            .filter(|j| j.alive())
            .map(|j| (j.id, j.curve.at(j.done)))
            .collect();
        let obs = Observation {
            devices: vec![DeviceReading {
                device: "GPU-h100".into(),
                used: Some(live.iter().map(|l| l.1).sum()),
                unmanaged: None,
            }],
            processes: live
                .iter()
                .map(|&(id, used)| ProcessReading { id, used })
                .collect(),
        };
        adm.observe(&obs, t);
        for d in adm.decide(t, &profiles) {
            let Decision::Admit {
                id,
                memory_limit,
                predicted_peak,
                ..
            } = d;
            assert_eq!(predicted_peak, gib(33.2));
            assert_eq!(memory_limit, (gib(33.2) as f64 * 1.1).ceil() as u64);
            log.push(format!(
                "t={t:6.1}s  admit job {id} (limit {:.2} GiB); waiting: {}",
                memory_limit as f64 / GIB as f64,
                adm.queue()
                    .iter()
                    .map(|q| format!(
                        "job {} {:?} until {:.0} s",
                        q.id,
                        q.reason,
                        q.predicted_start.unwrap_or(f64::NAN)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            jobs.push(TrueJob {
                id,
                device: 0,
                curve: curve(),
                a: A,
                eps: 0.0,
                done: 0.0,
                start: t,
                limit: memory_limit,
                finished: None,
            });
        }
        let mut refs: Vec<&mut TrueJob> = jobs.iter_mut().collect();
        let total = step_device(&mut refs, dt);
        max_total = max_total.max(total);
        assert!(total <= capacity, "over capacity at t={t}: {total}");
        t += dt;
    }
    assert_eq!(jobs.len(), 3, "{log:#?}");
    Outcome3 {
        jobs,
        log,
        max_total,
    }
}

fn report(title: &str, o: &Outcome3) -> f64 {
    let starts: Vec<f64> = o.jobs.iter().map(|j| j.start).collect();
    let (makespan, peak, ends) = point_model(&starts);
    println!("-- {title}");
    for line in &o.log {
        println!("   {line}");
    }
    for (j, e) in o.jobs.iter().zip(&ends) {
        println!("   job {}: {:6.1} s → {e:6.1} s", j.id, j.start);
    }
    println!(
        "   makespan {makespan:.1} s, peak total {:.2} GiB of {CAPACITY_GIB} GiB",
        peak as f64 / GIB as f64
    );
    assert!(peak <= gib(CAPACITY_GIB) && o.max_total <= gib(CAPACITY_GIB));
    let simulated = o
        .jobs
        .iter()
        .map(|j| j.finished.unwrap().0)
        .fold(0.0, f64::max);
    assert!(
        (makespan - simulated).abs() < 2.0,
        "{makespan} vs {simulated}"
    );
    makespan
}

#[test]
fn three_ti2v_on_one_h100() {
    let capacity = gib(CAPACITY_GIB);
    println!("== 3 × Wan2.2 TI2V-5B on H100 ({CAPACITY_GIB} GiB), all requested at t=0 ==");
    println!(
        "profile: 21.7 GiB for 211 s, 33.2 GiB for the last 31 s of 242 s; stretch 1 + (0.69 ± 0.1)·k, jitter ± 2 %"
    );
    let (together, together_peak, _) = point_model(&[0.0, 0.0, 0.0]);
    let (stagger, stagger_peak, _) = point_model(&[0.0, 60.0, 120.0]);
    let (greedy, greedy_peak, _) = point_model(&[0.0, 0.0, 409.0]);
    println!(
        "all at once: peak total {:.2} GiB > {CAPACITY_GIB}: OOM (would end at {together:.1} s)",
        together_peak as f64 / GIB as f64
    );
    println!(
        "60 s stagger: makespan {stagger:.1} s, peak total {:.2} GiB",
        stagger_peak as f64 / GIB as f64
    );
    println!(
        "two at once, third when they end: makespan {greedy:.1} s, peak total {:.2} GiB",
        greedy_peak as f64 / GIB as f64
    );
    assert!(together_peak > capacity);

    let headroom = run_three(Config::default());
    let makespan = report(
        "headroom (default config: 4 stretch bands, stagger search)",
        &headroom,
    );
    assert!(
        makespan <= stagger + 0.5,
        "headroom {makespan} vs stagger {stagger}"
    );
    assert!(makespan < greedy);

    // Independent check of "zero predicted overlap beyond capacity": from each admission,
    // every future inside the profile's stretch range (contention common to the device) and
    // jitter stays within capacity.
    let starts: Vec<f64> = headroom.jobs.iter().map(|j| j.start).collect();
    let env = curve();
    for (n, &s) in starts.iter().enumerate() {
        let progress = progress_at(&starts[..=n], s);
        for theta in [0.0, 0.25, 0.5, 0.75, 1.0] {
            for signs in sign_combos(n + 1) {
                let model: Vec<ModelJob> = progress
                    .iter()
                    .map(|&done| ModelJob {
                        envelope: env.clone(),
                        done,
                        a_min: A - 0.1,
                        a_max: A + 0.1,
                        jitter: 0.02,
                        floor: 0,
                        open: false,
                    })
                    .collect();
                let worst = worst_future(&model, theta, &signs, 0.1);
                assert!(
                    worst <= capacity,
                    "admission {n}: theta {theta} signs {signs:?}: {worst}"
                );
            }
        }
    }

    // Without the common-contention assumption (one band: every process's stretch
    // independent) the windows are too wide for three to overlap; still safe, slower.
    let independent = run_three(Config {
        stretch_bands: 1,
        ..Config::default()
    });
    let m1 = report(
        "one stretch band (independent stretch per process)",
        &independent,
    );
    assert!(m1 >= makespan);
    // Without the stagger search: plain FIFO earliest fit.
    let fifo = run_three(Config {
        stagger_lookahead: 0,
        ..Config::default()
    });
    let m2 = report("no stagger search (earliest fit)", &fifo);
    assert!(m2 >= makespan);
}

fn progress_at(starts: &[f64], at: f64) -> Vec<f64> {
    let dt = 0.01;
    let mut done = vec![0.0; starts.len()];
    let mut t = 0.0;
    while t < at - 1e-9 {
        let alive: Vec<usize> = (0..starts.len())
            .filter(|&i| starts[i] <= t + 1e-9 && done[i] < DURATION)
            .collect();
        let k = alive.len().saturating_sub(1) as f64;
        for &i in &alive {
            done[i] = (done[i] + dt / (1.0 + A * k)).min(DURATION);
        }
        t += dt;
    }
    done
}

fn sign_combos(n: usize) -> Vec<Vec<f64>> {
    (0..(1u32 << n))
        .map(|m| {
            (0..n)
                .map(|i| if m >> i & 1 == 1 { 1.0 } else { -1.0 })
                .collect()
        })
        .collect()
}
