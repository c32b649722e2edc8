//! Cost probe (ignored by default; run with `--release -- --ignored --nocapture`): eight
//! simulated hours of a Poisson stream of TI2V/S2V-like jobs on one H100, deciding at every
//! event and when the policy asks (`next_decision_at`), with and without a periodic decide
//! every 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
use common::*;
use headroom_admission::*;
use std::collections::BTreeMap;
use std::time::Instant;

#[test]
#[ignore = "cost benchmark that prints figures, not a pass/fail test: run with --release -- --ignored --nocapture"]
fn eight_hours_of_poisson_arrivals() {
    let stretch = Stretch {
        per_corunner: 0.69,
        spread: 0.1,
        jitter: 0.03,
    };
    let kinds = [
        ("ti2v", 242.0, vec![(0.0, gib(21.7)), (211.0, gib(33.2))]),
        ("s2v", 245.0, vec![(0.0, gib(55.0)), (220.0, gib(58.0))]),
        ("small", 90.0, vec![(0.0, gib(6.0)), (60.0, gib(12.0))]),
    ];
    let profiles: BTreeMap<String, Profile> = kinds
        .iter()
        .map(|(n, d, s)| {
            (
                n.to_string(),
                Profile::from_solo_steps(*n, *d, s, stretch, 10).unwrap(),
            )
        })
        .collect();
    for (mean_gap, periodic) in [
        (150.0, 10.0),
        (150.0, f64::INFINITY),
        (100.0, f64::INFINITY),
    ] {
        let mut adm = Admission::new(
            Config::default(),
            vec![Device {
                id: "GPU-0".into(),
                capacity: gib(79.18),
                reserve: 0,
            }],
        );
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut arrivals = Vec::new();
        let mut t = 0.0;
        while t < 8.0 * 3600.0 {
            t += -mean_gap * (1.0 - next()).ln();
            arrivals.push((t, (next() * 3.0) as usize));
        }
        let clock = Instant::now();
        let (mut decides, mut done, mut max_queue) = (0usize, 0usize, 0usize);
        let mut running: Vec<(RequestId, f64, f64)> = Vec::new(); // id, done, solo
        let mut i = 0;
        let mut t = 0.0;
        let mut next_decide = 0.0f64;
        let dt = 1.0;
        while t < 8.0 * 3600.0 || !running.is_empty() || !adm.queue().is_empty() {
            let mut event = false;
            while i < arrivals.len() && arrivals[i].0 <= t {
                let (name, _, _) = &kinds[arrivals[i].1];
                adm.enqueue(
                    Request {
                        id: RequestId(i as u64),
                        workload: name.to_string(),
                        declared_peak: None,
                        device: None,
                    },
                    t,
                )
                .unwrap();
                i += 1;
                event = true;
            }
            let k = running.len().saturating_sub(1) as f64;
            for r in running.iter_mut() {
                r.1 += dt / (1.0 + 0.69 * k);
            }
            running.retain(|r| {
                if r.1 >= r.2 {
                    adm.finished(r.0, Outcome::Completed, t);
                    done += 1;
                    event = true;
                    false
                } else {
                    true
                }
            });
            adm.observe(
                &Observation {
                    devices: vec![DeviceReading {
                        device: "GPU-0".into(),
                        used: Some(0),
                        unmanaged: Some(0),
                    }],
                    processes: vec![],
                },
                t,
            );
            if event || t >= next_decide {
                decides += 1;
                for d in adm.decide(t, &profiles) {
                    let Decision::Admit { id, .. } = d;
                    let solo = kinds[arrivals[id.0 as usize].1].1;
                    running.push((id, 0.0, solo));
                }
                max_queue = max_queue.max(adm.queue().len());
                next_decide = adm
                    .next_decision_at()
                    .unwrap_or(f64::INFINITY)
                    .min(t + periodic);
            }
            t += dt;
        }
        println!(
            "mean gap {mean_gap} s, periodic decide {periodic} s: {} jobs, {done} done by {:.1} h, {decides} decides, max queue {max_queue}, {:.2} s",
            arrivals.len(),
            t / 3600.0,
            clock.elapsed().as_secs_f64()
        );
    }
}
