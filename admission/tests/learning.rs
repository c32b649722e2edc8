//! Property tests of profile learning: the envelope covers every observed sample, an OOM
//! run raises and never lowers, the stretch is recovered from runs with co-runners, and
//! only the most recent runs count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
use common::*;
use headroom_admission::*;
use proptest::prelude::*;

/// A true workload: steady then a late peak (TI2V-like) or a mid-run bump.
#[derive(Clone, Debug)]
struct Truth {
    solo: f64,
    steady: u64,
    peak: u64,
    peak_from: f64,
    peak_to: f64,
    a: f64,
}

impl Truth {
    fn at(&self, progress: f64) -> u64 {
        if progress < 0.03 {
            self.steady / 3
        } else if (self.peak_from..self.peak_to).contains(&progress) {
            self.peak
        } else {
            self.steady
        }
    }

    /// A run with the given co-runner steps, speed factor and sample interval.
    fn run(&self, corunners: &[(f64, f64)], speed: f64, every: f64, noise: f64) -> Run {
        let rec = Run {
            workload: "w".into(),
            samples: vec![],
            duration_s: 0.0,
            corunners: corunners.to_vec(),
            outcome: Outcome::Completed,
            oom_attempted: None,
        };
        // Integrate progress until done.
        let dt = 0.05;
        let mut e = 0.0;
        let mut done = 0.0;
        let mut samples = vec![];
        let mut next_sample = 0.0;
        while done < self.solo {
            if e >= next_sample {
                let b = (self.at(done / self.solo) as f64 * (1.0 - noise)) as u64;
                samples.push((e, b));
                next_sample += every;
            }
            let k = corunners
                .iter()
                .rev()
                .find(|c| c.0 <= e)
                .map_or(0.0, |c| c.1);
            done += dt / ((1.0 + self.a * k) * speed);
            e += dt;
        }
        samples.push((e, self.at(1.0)));
        Run {
            samples,
            duration_s: e,
            ..rec
        }
    }
}

fn truth() -> impl Strategy<Value = Truth> {
    (
        60.0f64..400.0,
        4u64..40,
        0u64..30,
        0.5f64..0.9,
        0.03f64..0.2,
        0.3f64..1.0,
        prop::bool::ANY,
    )
        .prop_map(|(solo, s, extra, from, len, a, end)| Truth {
            solo,
            steady: s * GIB,
            peak: (s + extra) * GIB,
            peak_from: from,
            peak_to: if end { 1.01 } else { (from + len).min(0.99) },
            a,
        })
}

fn corunners() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0f64..300.0, 0u32..3), 0..4).prop_map(|mut v| {
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        v.into_iter().map(|(t, k)| (t, k as f64)).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn envelope_covers_every_sample(
        t in truth(),
        runs in prop::collection::vec((corunners(), 0.97f64..1.03, 0.5f64..5.0, 0.0f64..0.05), 1..5),
    ) {
        let runs: Vec<Run> = runs
            .iter()
            .map(|(c, speed, every, noise)| t.run(c, *speed, *every, *noise))
            .collect();
        let p = learn("w", &runs, &LearnConfig::default()).unwrap();
        let a = p.stretch().per_corunner;
        let seen = runs.iter().flat_map(|r| r.samples.iter().map(|s| s.1)).max().unwrap();
        prop_assert!(p.peak() >= seen && p.peak() <= t.peak + (128 << 20));
        for r in &runs {
            let total = r.solo_seconds(r.duration_s, a);
            for &(e, b) in &r.samples {
                let progress = r.solo_seconds(e, a) / total;
                prop_assert!(p.at(progress) >= b, "{} < {} at {}", p.at(progress), b, progress);
            }
        }
        prop_assert!(p.duration_s() > 0.0);
    }

    #[test]
    fn oom_raises_and_never_lowers(
        t in truth(),
        runs in prop::collection::vec((corunners(), 0.97f64..1.03), 1..4),
        cut in 0.1f64..0.99,
        attempted in 0u64..8,
    ) {
        let runs: Vec<Run> = runs.iter().map(|(c, s)| t.run(c, *s, 1.0, 0.0)).collect();
        let before = learn("w", &runs, &LearnConfig::default()).unwrap();
        let mut oom = t.run(&[], 1.0, 1.0, 0.0);
        let keep = ((oom.samples.len() as f64) * cut) as usize;
        oom.samples.truncate(keep.max(1));
        let last = *oom.samples.last().unwrap();
        oom.duration_s = last.0;
        oom.outcome = Outcome::Oom;
        oom.oom_attempted = Some(attempted * GIB);
        let mut with = runs.clone();
        with.push(oom);
        let after = learn("w", &with, &LearnConfig::default()).unwrap();
        prop_assert_eq!(after.duration_s(), before.duration_s());
        prop_assert_eq!(after.stretch(), before.stretch());
        for i in 0..=2000 {
            let q = i as f64 / 2000.0;
            prop_assert!(after.at(q) >= before.at(q), "lowered at {}", q);
        }
        prop_assert!(after.peak() >= last.1 + attempted * GIB);
    }

    #[test]
    fn stretch_is_recovered(
        t in truth(),
        ks in prop::collection::vec((0u32..4, 0.99f64..1.01), 4..10),
    ) {
        let mut runs = vec![t.run(&[], 1.0, 2.0, 0.0)];
        runs.extend(ks.iter().map(|(k, s)| t.run(&[(0.0, *k as f64)], *s, 2.0, 0.0)));
        let p = learn("w", &runs, &LearnConfig::default()).unwrap();
        let s = p.stretch();
        prop_assert!((p.duration_s() - t.solo).abs() <= 0.02 * t.solo + 0.2, "{} vs {}", p.duration_s(), t.solo);
        if ks.iter().any(|(k, _)| *k > 0) {
            prop_assert!((s.per_corunner - t.a).abs() <= 0.05, "{:?} vs {}", s, t.a);
            prop_assert!((s.per_corunner - t.a).abs() <= s.spread + 0.01, "{:?} vs {}", s, t.a);
        }
        prop_assert!(s.jitter >= 0.01 && s.jitter < 0.5);
    }
}

#[test]
fn only_recent_runs_count() {
    let big = Truth {
        solo: 100.0,
        steady: 10 * GIB,
        peak: 50 * GIB,
        peak_from: 0.8,
        peak_to: 1.01,
        a: 0.7,
    };
    let small = Truth {
        peak: 20 * GIB,
        ..big.clone()
    };
    let mut runs = vec![big.run(&[], 1.0, 1.0, 0.0)];
    runs.extend((0..10).map(|_| small.run(&[], 1.0, 1.0, 0.0)));
    let p = learn("w", &runs, &LearnConfig::default()).unwrap();
    assert_eq!(p.peak(), 20 * GIB);
    assert_eq!(p.runs(), 10);
    // An OOM run after them does not push a completed run out of the window.
    let mut oom = small.run(&[], 1.0, 1.0, 0.0);
    oom.outcome = Outcome::Oom;
    runs.push(oom);
    assert_eq!(
        learn("w", &runs, &LearnConfig::default()).unwrap().runs(),
        11
    );
    // Another workload's runs are ignored.
    runs.iter_mut().for_each(|r| r.workload = "other".into());
    assert!(learn("w", &runs, &LearnConfig::default()).is_none());
}

#[test]
fn seeds_ti2v_profile_from_runs() {
    // Three runs as in the seeds: 242 s alone, 410 s beside one co-runner, 576 s beside two.
    let t = Truth {
        solo: 242.0,
        steady: gib(21.7),
        peak: gib(33.2),
        peak_from: 211.0 / 242.0,
        peak_to: 1.01,
        a: 0.69,
    };
    let runs = vec![
        t.run(&[], 1.0, 1.0, 0.0),
        t.run(&[(0.0, 1.0)], 1.0, 1.0, 0.0),
        t.run(&[(0.0, 2.0)], 1.0, 1.0, 0.0),
    ];
    let p = learn("w", &runs, &LearnConfig::default()).unwrap();
    println!(
        "learned: duration {:.1} s, steady {:.2} GiB, peak {:.2} GiB, stretch {:?}, {} points",
        p.duration_s(),
        p.steady() as f64 / GIB as f64,
        p.peak() as f64 / GIB as f64,
        p.stretch(),
        p.points().len()
    );
    assert!((p.duration_s() - 242.0).abs() < 1.0);
    assert!((p.stretch().per_corunner - 0.69).abs() < 0.01);
    assert!(p.steady() >= gib(21.7) && p.steady() < gib(21.9));
    assert!(p.peak() >= gib(33.2) && p.peak() < gib(33.4));
    assert!(p.points().len() <= 6, "{:?}", p.points());
}
