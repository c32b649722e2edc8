//! The goodput simulator against the seeds' observations (issue 4, acceptance 2) and
//! Headroom against the alternatives on every shipped scenario (acceptance 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use headroom_sim::compare::{Report, tuned_stagger, whole_gpu};
use headroom_sim::engine::{End, Record, RunResult, Sim};
use headroom_sim::policy::mig::{Layout, Mig};
use headroom_sim::policy::simple::{AllAtOnce, Stagger};
use headroom_sim::scenario::Arrivals;
use headroom_sim::{Scenario, compare};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/goodput")
}

fn load(name: &str) -> Scenario {
    Scenario::load(&dir().join(name)).unwrap()
}

fn ooms(r: &RunResult) -> usize {
    r.jobs
        .iter()
        .filter(|j| j.outcome.is_some_and(End::is_oom))
        .count()
}

fn finished(r: &RunResult) -> usize {
    r.jobs
        .iter()
        .filter(|j| j.outcome == Some(End::Completed))
        .count()
}

fn within(value: f64, target: f64, tolerance: f64) -> bool {
    (value - target).abs() <= target * tolerance
}

#[test]
fn three_ti2v_at_once_ooms_and_a_minute_apart_take_ten_and_a_half_minutes() {
    let s = load("h100-3x-ti2v5b.toml");
    for seed in 1..=20 {
        let jobs = s.jobs(seed);
        let r = Sim::new(&s, &jobs, whole_gpu(&s), Record::default()).run(&mut AllAtOnce);
        // The seeds: "1 OOM, 2 survived".
        assert_eq!(ooms(&r), 1, "seed {seed}: {r:?}");
        assert_eq!(finished(&r), 2, "seed {seed}");
        let r = Sim::new(&s, &jobs, whole_gpu(&s), Record::default()).run(&mut Stagger::new(60.0));
        assert_eq!(finished(&r), 3, "seed {seed}: {r:?}");
        // The seeds: 10m30s for three videos.
        assert!(
            within(r.end_time, 630.0, 0.15),
            "seed {seed}: {}",
            r.end_time
        );
    }
}

#[test]
fn two_ti2v_beside_each_other_and_on_two_3g_slices_take_six_minutes_fifty() {
    let s = load("h100-3x-ti2v5b.toml");
    let mut jobs = s.jobs(3);
    jobs.truncate(2);
    // MPS, side by side: "6m50s beside one other".
    let r = Sim::new(&s, &jobs, whole_gpu(&s), Record::default()).run(&mut AllAtOnce);
    assert_eq!(finished(&r), 2);
    for j in &r.jobs {
        assert!(within(j.end.unwrap(), 410.0, 0.15), "{j:?}");
    }
    // MIG 2 x 3g.40gb: "2 x Wan2.2 TI2V 5B, MIG 2 instances, 6m50s".
    let table = s.gpu.mig.unwrap();
    let g3 = table.profile("3g.40gb").unwrap();
    let layout = Layout {
        profiles: vec![g3, g3],
    };
    let slots = layout.slots(&s.gpu, &s.contention);
    let r = Sim::new(&s, &jobs, slots, Record::default()).run(&mut Mig);
    assert_eq!(finished(&r), 2);
    let slots_used: Vec<usize> = r.jobs.iter().map(|j| j.slot.unwrap()).collect();
    assert_ne!(slots_used[0], slots_used[1], "one job per slice");
    for j in &r.jobs {
        assert!(within(j.end.unwrap(), 410.0, 0.15), "{j:?}");
    }
}

#[test]
fn two_s2v_under_mps_lose_one_and_fit_only_the_7g_slice() {
    let s = load("h100-2x-s2v14b.toml");
    let jobs = s.jobs(1);
    let r = Sim::new(&s, &jobs, whole_gpu(&s), Record::default()).run(&mut AllAtOnce);
    // The seeds: "1 OOM, 1 survived".
    assert_eq!((ooms(&r), finished(&r)), (1, 1));
    let report = compare(&s, 1, false);
    assert_eq!(report.get("mig").unwrap().detail, "7g.80gb");
}

/// Acceptance 1 on one scenario over `seeds` seeds.
fn headroom_holds_up(name: &str, seeds: u64) {
    let s = load(name);
    let stagger_ok = {
        // The tuned stagger is an honest baseline only where it never ran out of memory.
        let gap = tuned_stagger(&s).unwrap();
        (0..20).all(|d| {
            let jobs = s.jobs(0x7475_6E65 + d);
            let r =
                Sim::new(&s, &jobs, whole_gpu(&s), Record::default()).run(&mut Stagger::new(gap));
            ooms(&r) == 0
        })
    };
    let (mut warm_sum, mut stagger_sum) = (0.0, 0.0);
    for seed in 1..=seeds {
        let r: Report = compare(&s, seed, false);
        let warm = r.get("headroom_warm").unwrap();
        let cold = r.get("headroom_cold").unwrap();
        let oracle = r.get("oracle").unwrap();
        let stagger = r.get("fixed_stagger").unwrap();
        let ctx = format!("{name} seed {seed}: {:#?}", r.policies);
        assert_eq!(warm.ooms, 0, "{ctx}");
        assert_eq!(warm.finished, warm.jobs, "{ctx}");
        assert_eq!(
            cold.ooms, cold.ooms_first_runs,
            "cold OOMs beyond first runs: {ctx}"
        );
        assert_eq!(oracle.ooms, 0, "{ctx}");
        assert!(warm.makespan_s <= oracle.makespan_s * 1.10, "{ctx}");
        assert!(warm.finished >= stagger.finished, "{ctx}");
        if stagger_ok {
            // Per seed the two schedules see different luck: on 3 x TI2V-5B Headroom starts
            // jobs 2 and 3 together, so its makespan is the slower of two random durations,
            // and it is behind the one-minute stagger by up to 0.8 % on one seed in five (200
            // seeds, docs/benchmarks.md). The stagger was tuned on its mean; the mean is
            // compared below, this bounds the per-seed noise.
            assert!(warm.makespan_s <= stagger.makespan_s * 1.01, "{ctx}");
            warm_sum += warm.makespan_s;
            stagger_sum += stagger.makespan_s;
        }
        // Every policy ran every job at most once and accounted for all of them.
        for (k, p) in &r.policies {
            assert_eq!(p.finished + p.ooms + p.never_started, p.jobs, "{k}: {ctx}");
        }
    }
    // No worse than the best fixed stagger, in the sense the stagger was chosen in: mean
    // makespan over the same draws.
    assert!(
        warm_sum <= stagger_sum,
        "{name}: mean makespan {:.1} s, tuned stagger {:.1} s",
        warm_sum / seeds as f64,
        stagger_sum / seeds as f64
    );
}

#[test]
fn headroom_on_three_ti2v_h100() {
    headroom_holds_up("h100-3x-ti2v5b.toml", 20);
}

#[test]
fn headroom_on_s2v_and_ti2v_h100() {
    headroom_holds_up("h100-s2v14b-ti2v5b.toml", 20);
}

#[test]
fn headroom_on_two_s2v_h100() {
    headroom_holds_up("h100-2x-s2v14b.toml", 20);
}

#[test]
fn headroom_on_five_ti2v_b200() {
    headroom_holds_up("b200-5x-ti2v5b.toml", 20);
}

#[test]
fn headroom_on_three_s2v_b200() {
    headroom_holds_up("b200-3x-s2v14b.toml", 20);
}

/// The full 20 seeds of the 8-hour stream take minutes on two cores; CI runs two, the full
/// run is `headroom-bench admission --scenario scenarios/goodput/h100-stream-8h.toml
/// --seeds 20` (docs/benchmarks.md).
#[test]
fn headroom_on_the_eight_hour_stream() {
    let s = load("h100-stream-8h.toml");
    assert!(matches!(s.arrivals, Arrivals::Stream { .. }));
    headroom_holds_up("h100-stream-8h.toml", 2);
}

#[test]
fn same_seed_same_report_other_seed_other_jobs() {
    let s = load("h100-s2v14b-ti2v5b.toml");
    let a = compare(&s, 5, false);
    let b = compare(&s, 5, false);
    let strip = |r: &Report| {
        r.policies
            .iter()
            .map(|(k, p)| (k.clone(), p.finished, p.ooms, p.makespan_s, p.wait_p95_s))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    assert_ne!(s.jobs(5), s.jobs(6));
}

#[test]
fn every_shipped_scenario_loads() {
    let mut n = 0;
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() == "wan22.toml" {
            continue;
        }
        Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn a_bad_scenario_names_every_problem() {
    let tmp = std::env::temp_dir().join(format!("headroom-sim-bad-{}.toml", std::process::id()));
    std::fs::write(
        &tmp,
        r#"
name = "bad"
[gpu]
name = "x"
memory_total = "80 parsecs"
sm_count = 0
mig_profiles = "z100"
[contention]
mps_slowdown = [0.5]
[noise]
duration = 2.0
[[workload]]
name = "w"
timeline = [[0, "0"], [0, "1GiB"]]
[[arrivals]]
workload = "nope"
[[arrivals]]
workload = "w"
count = 4294967295
"#,
    )
    .unwrap();
    let err = Scenario::load(&tmp).unwrap_err().to_string();
    std::fs::remove_file(&tmp).unwrap();
    for needle in [
        "gpu.memory_total",
        "gpu.sm_count",
        "unknown MIG table \"z100\"",
        "contention.mps_slowdown",
        "noise.duration",
        "timeline[1]",
        "unknown workload \"nope\"",
        "arrivals[1].count: must be 1 to 100000",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    assert!(err.contains(tmp.to_str().unwrap()), "{err}");
}
