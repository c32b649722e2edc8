//! Unit-level behaviour of the admission policy: rejections, unknown device memory, live
//! usage above prediction, unknown workloads, declared peaks, limits, FCFS with backfilling,
//! the seeds' S2V cases, restart adoption, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
use common::*;
use headroom_admission::*;
use std::collections::BTreeMap;

const DEV: &str = "GPU-0";

fn h100(config: Config) -> Admission {
    Admission::new(
        config,
        vec![Device {
            id: DEV.into(),
            capacity: gib(79.18),
            reserve: 0,
        }],
    )
}

fn stretch() -> Stretch {
    Stretch {
        per_corunner: 0.69,
        spread: 0.1,
        jitter: 0.02,
    }
}

fn ti2v() -> Profile {
    Profile::from_solo_steps(
        "ti2v",
        242.0,
        &[(0.0, gib(21.7)), (211.0, gib(33.2))],
        stretch(),
        10,
    )
    .unwrap()
}

fn s2v() -> Profile {
    Profile::from_solo_steps(
        "s2v",
        245.0,
        &[(0.0, gib(55.0)), (220.0, gib(58.0))],
        stretch(),
        10,
    )
    .unwrap()
}

fn small() -> Profile {
    Profile::from_solo_steps("small", 60.0, &[(0.0, gib(8.0))], stretch(), 10).unwrap()
}

fn profiles() -> BTreeMap<String, Profile> {
    [ti2v(), s2v(), small()]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect()
}

fn req(id: u64, workload: &str) -> Request {
    Request {
        id: RequestId(id),
        workload: workload.into(),
        declared_peak: None,
        device: None,
    }
}

fn observe(adm: &mut Admission, used: Option<u64>, procs: &[(u64, u64)], t: f64) {
    adm.observe(
        &Observation {
            devices: vec![DeviceReading {
                device: DEV.into(),
                used,
                unmanaged: None,
            }],
            processes: procs
                .iter()
                .map(|&(id, used)| ProcessReading {
                    id: RequestId(id),
                    used,
                })
                .collect(),
        },
        t,
    );
}

fn admitted(d: &[Decision]) -> Vec<u64> {
    d.iter()
        .map(|d| match d {
            Decision::Admit { id, .. } => id.0,
        })
        .collect()
}

#[test]
fn rejections_leave_the_queue_untouched() {
    let mut adm = h100(Config::default());
    assert_eq!(
        adm.enqueue(
            Request {
                device: Some("GPU-nope".into()),
                ..req(1, "ti2v")
            },
            0.0
        ),
        Err(RejectReason::UnknownDevice("GPU-nope".into()))
    );
    assert!(matches!(
        adm.enqueue(
            Request {
                declared_peak: Some(gib(80.0)),
                ..req(1, "ti2v")
            },
            0.0
        ),
        Err(RejectReason::TooLarge { .. })
    ));
    assert!(matches!(
        adm.enqueue(
            Request {
                declared_peak: Some(0),
                ..req(1, "ti2v")
            },
            0.0
        ),
        Err(RejectReason::Invalid(_))
    ));
    assert!(matches!(
        adm.enqueue(req(1, " "), 0.0),
        Err(RejectReason::Invalid(_))
    ));
    assert!(adm.queue().is_empty());
    adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
    assert_eq!(
        adm.enqueue(req(1, "s2v"), 0.0),
        Err(RejectReason::DuplicateId(RequestId(1)))
    );
    assert_eq!(adm.queue().len(), 1);
    assert_eq!(adm.queue()[0].reason, WaitReason::Pending);
    // The device reserve counts: 79.18 − 10 GiB cannot hold a declared 70 GiB.
    let mut adm = Admission::new(
        Config {
            reserve: gib(5.0),
            ..Config::default()
        },
        vec![Device {
            id: DEV.into(),
            capacity: gib(79.18),
            reserve: gib(5.0),
        }],
    );
    assert!(matches!(
        adm.enqueue(
            Request {
                declared_peak: Some(gib(70.0)),
                ..req(1, "x")
            },
            0.0
        ),
        Err(RejectReason::TooLarge { .. })
    ));
}

#[test]
fn unknown_device_memory_is_never_admissible() {
    let mut adm = h100(Config::default());
    let p = profiles();
    adm.enqueue(req(1, "small"), 0.0).unwrap();
    // Never observed yet.
    assert!(adm.decide(0.0, &p).is_empty());
    assert_eq!(adm.queue()[0].reason, WaitReason::DeviceMemoryUnknown);
    assert_eq!(adm.queue()[0].predicted_start, None);
    // A failed reading.
    observe(&mut adm, None, &[], 1.0);
    assert!(adm.decide(1.0, &p).is_empty());
    assert_eq!(adm.queue()[0].reason, WaitReason::DeviceMemoryUnknown);
    observe(&mut adm, Some(0), &[], 2.0);
    assert_eq!(admitted(&adm.decide(2.0, &p)), vec![1]);
    // Reading lost again: nothing more is admitted.
    adm.enqueue(req(2, "small"), 3.0).unwrap();
    observe(&mut adm, None, &[(1, gib(8.0))], 3.0);
    assert!(adm.decide(3.0, &p).is_empty());
}

#[test]
fn cancel_leaves_cleanly_even_when_held() {
    let mut adm = h100(Config::default());
    let p = profiles();
    observe(&mut adm, Some(0), &[], 0.0);
    for i in 1..=3 {
        adm.enqueue(req(i, "ti2v"), 0.0).unwrap();
    }
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
    let q = adm.queue();
    assert_eq!(q[0].reason, WaitReason::Stagger, "{q:?}");
    adm.cancel(RequestId(2));
    adm.cancel(RequestId(99));
    assert_eq!(
        adm.queue().iter().map(|q| q.id.0).collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(adm.queue()[0].position, 0);
    // finished() on a queued id abandons it too.
    adm.finished(RequestId(3), Outcome::Interrupted, 1.0);
    assert!(adm.queue().is_empty());
    assert_eq!(adm.running().len(), 1);
}

#[test]
fn live_usage_above_prediction_raises_it() {
    let mut adm = h100(Config::default());
    let p = profiles();
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
    observe(&mut adm, Some(gib(21.7)), &[(1, gib(21.7))], 10.0);
    assert_eq!(adm.reserved(DEV), Some(gib(21.7)));
    // It grows far past its profile: 50 GiB at t=20 s.
    observe(&mut adm, Some(gib(50.0)), &[(1, gib(50.0))], 20.0);
    assert_eq!(adm.reserved(DEV), Some(gib(50.0)));
    assert_eq!(adm.predicted_peak(DEV), Some(gib(50.0)));
    // A 33.2 GiB-peak newcomer would fit beside the profile (33.2 + 33.2) but not beside
    // the live 50 GiB.
    adm.enqueue(req(2, "ti2v"), 20.0).unwrap();
    assert!(adm.decide(20.0, &p).is_empty());
    assert_eq!(adm.queue()[0].reason, WaitReason::Memory);
    adm.finished(RequestId(1), Outcome::Completed, 30.0);
    observe(&mut adm, Some(0), &[], 30.0);
    assert_eq!(admitted(&adm.decide(30.0, &p)), vec![2]);
}

/// A process above its envelope holds others back; when it drops back into the envelope
/// the very next `decide` (nothing else changed, well inside the periodic re-plan) admits.
#[test]
fn a_drop_back_into_the_envelope_is_planned_at_once() {
    let mut adm = h100(Config::default());
    let p = profiles();
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
    observe(&mut adm, Some(gib(50.0)), &[(1, gib(50.0))], 20.0);
    adm.enqueue(req(2, "ti2v"), 20.0).unwrap();
    assert!(adm.decide(20.0, &p).is_empty());
    // Growth that stays above the envelope changes nothing that could admit it.
    observe(&mut adm, Some(gib(52.0)), &[(1, gib(52.0))], 21.0);
    assert!(adm.decide(21.0, &p).is_empty());
    observe(&mut adm, Some(gib(21.7)), &[(1, gib(21.7))], 22.0);
    assert_eq!(admitted(&adm.decide(22.0, &p)), vec![2]);
}

#[test]
fn unknown_workload_without_any_profile_waits_for_an_idle_device() {
    let mut adm = h100(Config::default());
    let none: BTreeMap<String, Profile> = BTreeMap::new();
    observe(&mut adm, Some(gib(1.0)), &[], 0.0); // 1 GiB unmanaged
    adm.enqueue(req(1, "mystery"), 0.0).unwrap();
    let d = adm.decide(0.0, &none);
    let Decision::Admit {
        memory_limit,
        predicted_peak,
        ..
    } = d[0].clone();
    // The whole device but the unmanaged usage, and the limit is no larger.
    assert_eq!(predicted_peak, gib(79.18) - gib(1.0));
    assert_eq!(memory_limit, predicted_peak);
    adm.enqueue(req(2, "mystery2"), 1.0).unwrap();
    assert!(adm.decide(1.0, &none).is_empty());
    assert_eq!(adm.queue()[0].reason, WaitReason::UnknownWorkload);
    adm.finished(RequestId(1), Outcome::Completed, 50.0);
    assert_eq!(admitted(&adm.decide(50.0, &none)), vec![2]);
}

#[test]
fn unknown_workload_gets_the_largest_known_profile() {
    let mut adm = h100(Config::default());
    let p = profiles();
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
    adm.enqueue(req(2, "mystery"), 0.0).unwrap();
    // 58 GiB (S2V's peak) does not fit beside TI2V's 33.2 GiB peak: it waits.
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
    assert_eq!(adm.queue()[0].reason, WaitReason::UnknownWorkload);
    let start = adm.queue()[0].predicted_start.unwrap();
    assert!(start > 200.0 && start < 300.0, "{start}");
    adm.finished(RequestId(1), Outcome::Completed, 242.0);
    let d = adm.decide(242.0, &p);
    let Decision::Admit {
        memory_limit,
        predicted_peak,
        ..
    } = d[0].clone();
    assert_eq!(predicted_peak, gib(58.0));
    assert!(memory_limit <= predicted_peak);
    // Beside it: a small known job fits (58 + 8 ≤ 79.18), a TI2V does not.
    adm.enqueue(req(3, "ti2v"), 243.0).unwrap();
    adm.enqueue(req(4, "small"), 243.0).unwrap();
    assert_eq!(admitted(&adm.decide(243.0, &p)), vec![4]);
    assert_eq!(
        adm.queue()[0].predicted_start,
        None,
        "open-ended until it ends"
    );
}

#[test]
fn declared_peak_is_honoured_flat() {
    let mut adm = h100(Config::default());
    let p = profiles();
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(
        Request {
            declared_peak: Some(gib(40.0)),
            ..req(1, "ti2v")
        },
        0.0,
    )
    .unwrap();
    let d = adm.decide(0.0, &p);
    let Decision::Admit {
        memory_limit,
        predicted_peak,
        ..
    } = d[0].clone();
    assert_eq!((memory_limit, predicted_peak), (gib(40.0), gib(40.0)));
    // Flat 40 GiB for the profile's duration: a TI2V (33.2 peak) fits beside it, an S2V not.
    assert_eq!(adm.reserved(DEV), Some(gib(40.0)));
    adm.enqueue(req(2, "s2v"), 0.0).unwrap();
    assert!(adm.decide(0.0, &p).is_empty());
    let start = adm.queue()[0].predicted_start.unwrap();
    // Ends by 242 × (1 + 0.02) ≈ 247 s at the latest (alone).
    assert!((240.0..=250.0).contains(&start), "{start}");
    // Declared, no profile: open-ended.
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(
        Request {
            declared_peak: Some(gib(30.0)),
            ..req(1, "new-model")
        },
        0.0,
    )
    .unwrap();
    adm.enqueue(req(2, "s2v"), 0.0).unwrap();
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
    assert_eq!(adm.queue()[0].predicted_start, None);
}

#[test]
fn limit_is_peak_times_margin_capped_by_the_device() {
    let p = profiles();
    for (margin, want) in [
        (0.0, gib(33.2)),
        (0.1, (gib(33.2) as f64 * 1.1).ceil() as u64),
    ] {
        let mut adm = h100(Config {
            margin,
            ..Config::default()
        });
        observe(&mut adm, Some(0), &[], 0.0);
        adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
        let Decision::Admit { memory_limit, .. } = adm.decide(0.0, &p)[0].clone();
        assert_eq!(memory_limit, want);
    }
    // S2V's 58 GiB × 1.5 = 87 GiB is more than the device can give: capped at the budget.
    let mut adm = h100(Config {
        margin: 0.5,
        ..Config::default()
    });
    observe(&mut adm, Some(gib(2.0)), &[], 0.0);
    adm.enqueue(req(1, "s2v"), 0.0).unwrap();
    let Decision::Admit { memory_limit, .. } = adm.decide(0.0, &p)[0].clone();
    assert_eq!(memory_limit, gib(79.18) - gib(2.0));
}

#[test]
fn seeds_s2v_cases_are_serialized() {
    // 2 × S2V-14B: 55 + 55 > 79.18. S2V + TI2V: 58 + 21.7 = 79.7 > 79.18 (the seeds' co-run
    // "worked" by luck). Both run one after the other.
    for second in ["s2v", "ti2v"] {
        let mut adm = h100(Config::default());
        let p = profiles();
        observe(&mut adm, Some(0), &[], 0.0);
        adm.enqueue(req(1, "s2v"), 0.0).unwrap();
        adm.enqueue(req(2, second), 0.0).unwrap();
        assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
        let q = adm.queue();
        let start = q[0].predicted_start.unwrap();
        assert!((245.0..=252.0).contains(&start), "{second}: {start}");
        assert_eq!(adm.next_decision_at(), Some(start));
    }
}

#[test]
fn backfill_only_when_it_does_not_delay_the_head() {
    // Under contention any co-runner slows the processes the head waits for, which would
    // delay the head: the head's planned start is kept and the job is planned after it.
    // Without contention (a = 0) a short job may pass.
    let still = Stretch {
        per_corunner: 0.0,
        spread: 0.0,
        jitter: 0.02,
    };
    let mk = |name: &str, d: f64, steps: &[(f64, u64)], s: Stretch| {
        Profile::from_solo_steps(name, d, steps, s, 10).unwrap()
    };
    for (stretch, passes) in [(still, true), (stretch(), false)] {
        let p: BTreeMap<String, Profile> = [
            mk(
                "batch",
                242.0,
                &[(0.0, gib(21.7)), (211.0, gib(33.2))],
                stretch,
            ),
            mk("medium", 60.0, &[(0.0, gib(30.0))], stretch),
            s2v(),
        ]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect();
        let mut adm = h100(Config::default());
        observe(&mut adm, Some(0), &[], 0.0);
        adm.enqueue(req(1, "batch"), 0.0).unwrap();
        assert_eq!(admitted(&adm.decide(0.0, &p)), vec![1]);
        // The head, an S2V, must wait for the batch job (33.2 + 58 > 79.18).
        adm.enqueue(req(2, "s2v"), 1.0).unwrap();
        // A 60 s job fits now (33.2 + 30) and ends long before the batch job.
        adm.enqueue(req(3, "medium"), 1.0).unwrap();
        let before = adm.preview(1.0, &p);
        let got = admitted(&adm.decide(1.0, &p));
        let after = adm.queue();
        assert!(after[0].predicted_start.unwrap() <= before[0].predicted_start.unwrap() + 1e-9);
        if !passes {
            // Beside the batch job it would slow it past the S2V's planned start.
            assert!(got.is_empty());
            assert_eq!(after[1].reason, WaitReason::Memory, "{after:?}");
            assert!(after[1].predicted_start > after[0].predicted_start);
            continue;
        }
        assert_eq!(got, vec![3]);
        assert_eq!(after[0].id, RequestId(2));
        // At t=200 the same job would still run when the S2V is due (≈ 247 s) and
        // 58 + 30 > 79.18: the S2V's reservation keeps it out; it is planned after it.
        adm.finished(RequestId(3), Outcome::Completed, 61.0);
        adm.enqueue(req(4, "medium"), 200.0).unwrap();
        let head = adm.preview(200.0, &p)[0].predicted_start.unwrap();
        assert!(adm.decide(200.0, &p).is_empty());
        let q = adm.queue();
        assert_eq!(q[1].reason, WaitReason::Memory, "{q:?}");
        assert_eq!(q[0].predicted_start.unwrap(), head);
        assert!(q[1].predicted_start.unwrap() > head + 245.0);
    }
}

#[test]
fn adopted_processes_count_after_a_restart() {
    let p = profiles();
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(gib(56.0)), &[], 1000.0);
    adm.adopt(
        Adopted {
            id: RequestId(7),
            device: DEV.into(),
            workload: "s2v".into(),
            started_at: 900.0,
            basis: Basis::Profile(s2v()),
            memory_limit: gib(63.8),
        },
        1000.0,
    )
    .unwrap();
    observe(&mut adm, Some(gib(56.0)), &[(7, gib(56.0))], 1000.0);
    assert_eq!(adm.unmanaged(DEV), Some(0));
    adm.enqueue(req(8, "ti2v"), 1000.0).unwrap();
    assert!(adm.decide(1000.0, &p).is_empty());
    assert_eq!(adm.running()[0].id, RequestId(7));
    assert!(matches!(
        adm.adopt(
            Adopted {
                id: RequestId(7),
                device: DEV.into(),
                workload: "s2v".into(),
                started_at: 900.0,
                basis: Basis::Profile(s2v()),
                memory_limit: 1,
            },
            1000.0
        ),
        Err(RejectReason::DuplicateId(_))
    ));
}

#[test]
fn overdue_process_holds_its_peak_until_it_ends() {
    // A TI2V that runs far past every band's slowest end is held at its peak.
    let p = profiles();
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(0), &[], 0.0);
    adm.enqueue(req(1, "ti2v"), 0.0).unwrap();
    adm.decide(0.0, &p);
    observe(&mut adm, Some(gib(21.7)), &[(1, gib(21.7))], 2000.0);
    assert_eq!(adm.reserved(DEV), Some(gib(33.2)));
    adm.enqueue(req(2, "s2v"), 2000.0).unwrap();
    assert!(adm.decide(2000.0, &p).is_empty());
    assert_eq!(adm.queue()[0].predicted_start, None);
    adm.finished(RequestId(1), Outcome::Completed, 2100.0);
    assert_eq!(admitted(&adm.decide(2100.0, &p)), vec![2]);
}

#[test]
fn unmanaged_usage_counts_with_its_growth() {
    let p = profiles();
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(gib(10.0)), &[], 0.0);
    observe(&mut adm, Some(gib(14.0)), &[], 1.0);
    // 14 live + 4 growth.
    assert_eq!(adm.unmanaged(DEV), Some(gib(18.0)));
    assert_eq!(adm.budget(DEV), Some(gib(79.18) - gib(18.0)));
    // S2V (58) fits in 79.18 − 18 = 61.18.
    adm.enqueue(req(1, "s2v"), 1.0).unwrap();
    assert_eq!(admitted(&adm.decide(1.0, &p)), vec![1]);
    // A TI2V beside it does not.
    adm.enqueue(req(2, "ti2v"), 2.0).unwrap();
    assert!(adm.decide(2.0, &p).is_empty());
}

#[test]
fn decisions_are_deterministic() {
    let run = || {
        let p = profiles();
        let mut adm = h100(Config::default());
        let mut log = Vec::new();
        observe(&mut adm, Some(0), &[], 0.0);
        for (i, w) in ["ti2v", "small", "ti2v", "s2v", "ti2v", "small"]
            .iter()
            .enumerate()
        {
            adm.enqueue(req(i as u64, w), i as f64).unwrap();
        }
        for t in 0..2000 {
            let t = t as f64;
            for r in adm.running() {
                let dur = if r.workload == "small" { 60.0 } else { 400.0 };
                if t - r.started_at > dur {
                    adm.finished(r.id, Outcome::Completed, t);
                }
            }
            observe(&mut adm, Some(0), &[], t);
            for d in adm.decide(t, &p) {
                log.push((t, d));
            }
        }
        (log, adm.queue())
    };
    let a = run();
    assert_eq!(a, run());
    assert_eq!(a.0.len(), 6, "{a:?}");
}

#[test]
fn deep_queue_entries_wait_unplanned() {
    let p = profiles();
    let mut adm = h100(Config {
        plan_depth: 3,
        ..Config::default()
    });
    observe(&mut adm, Some(0), &[], 0.0);
    for i in 0..6 {
        adm.enqueue(req(i, "s2v"), 0.0).unwrap();
    }
    assert_eq!(admitted(&adm.decide(0.0, &p)), vec![0]);
    let q = adm.queue();
    assert_eq!(q.len(), 5);
    assert!(q[..3].iter().all(|e| e.predicted_start.is_some()));
    assert!(
        q[3..]
            .iter()
            .all(|e| e.reason == WaitReason::Queued && e.predicted_start.is_none())
    );
    // Starts are in order, one S2V after another.
    assert!(q[0].predicted_start < q[1].predicted_start);
}

#[test]
fn preview_commits_nothing_and_matches_decide() {
    let p = profiles();
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(0), &[], 0.0);
    for i in 1..=3 {
        adm.enqueue(req(i, "ti2v"), 0.0).unwrap();
    }
    let a = adm.preview(0.0, &p);
    let b = adm.preview(0.0, &p);
    assert_eq!(a, b);
    assert!(adm.running().is_empty());
    assert!(adm.queue().iter().all(|q| q.reason == WaitReason::Pending));
    assert_eq!(a[0].reason, WaitReason::Ready);
    assert_eq!(a[1].reason, WaitReason::Stagger);
    let d = adm.decide(0.0, &p);
    assert_eq!(admitted(&d), vec![1]);
    let q = adm.queue();
    assert_eq!(q[0].predicted_start, a[1].predicted_start);
    assert_eq!(q[1].predicted_start, a[2].predicted_start);
}

#[test]
fn a_workload_that_uses_no_gpu_memory_is_admitted() {
    let mut p = profiles();
    let cpu = Profile::from_solo_steps("cpu", 30.0, &[(0.0, 0)], stretch(), 3).unwrap();
    p.insert("cpu".into(), cpu);
    let mut adm = h100(Config::default());
    observe(&mut adm, Some(gib(79.18)), &[], 0.0); // the device is full of unmanaged usage
    adm.enqueue(req(1, "cpu"), 0.0).unwrap();
    adm.enqueue(req(2, "mystery"), 0.0).unwrap();
    let d = adm.decide(0.0, &p);
    assert_eq!(admitted(&d), vec![1]);
    let Decision::Admit { memory_limit, .. } = d[0].clone();
    assert_eq!(memory_limit, 0);
    // Nothing is free, so the unknown workload waits rather than getting a 0-byte reservation.
    assert_eq!(adm.queue()[0].reason, WaitReason::UnknownWorkload);
}
