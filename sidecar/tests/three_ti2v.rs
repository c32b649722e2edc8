//! Issue 3, acceptance 1 (fake NVML, `scenarios/h100-mps-wan22.toml` played faster):
//! three TI2V-5B jobs started together without the sidecar → at least one OOM (at 40×);
//! with the seeds' fixed 60 s stagger → all finish (the baseline makespan, at 20×, so a
//! 242 s run takes ≈12 s); the same three through `headroom-sidecar run`, after one solo
//! learning run → zero OOMs, all finish, and a makespan no longer than the stagger's.
//!
//! What the margin is made of (2026-11-22, 2-core build machine): after one solo run the
//! stretch is still the prior's wide range, so the policy starts the second and third job
//! together at ≈74–80 s instead of 60 s and 120 s; in the contention model that finishes
//! ≈1.6 virtual seconds (0.25 %) sooner than the stagger. The sidecar's own costs do not
//! scale with the time factor (the 20 ms arrival batch, a client poll, process starts: about
//! 50 ms of wall time, 1 virtual second at 20×), which is why this test runs at 20× rather
//! than 40× (where they eat the whole margin). Measured: 99.8–99.9 % of the stagger's
//! makespan, also with two busy loops competing for the two cores. nextest runs this test
//! alone (`.config/nextest.toml`) so the two schedules are timed under the same load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Time factor of the makespan comparison.
const SCALE: f64 = 20.0;
/// Time factor of the all-at-once run, which only has to show the OOM.
const OOM_SCALE: f64 = 40.0;

#[test]
fn sidecar_beats_oom_and_fixed_stagger() {
    // 1. All at once, no admission control.
    let fast = World::h100("three-oom", OOM_SCALE);
    let t0 = Instant::now();
    let (outs, together) = finish_all(t0, (0..3).map(|_| fast.job("ti2v-5b", &[])).collect());
    let ooms = outs.iter().filter(|o| is_oom(o)).count();
    assert!(ooms >= 1, "three TI2V at once must OOM on an 80 GB H100");
    eprintln!("all at once: {ooms} OOM, {:.2} s", together.as_secs_f64());
    drop(fast);

    let mut w = World::h100("three", SCALE);

    // 2. The seeds' hand-tuned stagger: 60 s apart.
    let gap = Duration::from_secs_f64(60.0 / SCALE);
    let t0 = Instant::now();
    let mut children = Vec::new();
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(gap);
        }
        children.push(w.job("ti2v-5b", &[]));
    }
    let (outs, stagger) = finish_all(t0, children);
    assert!(
        outs.iter().all(|o| o.status.success()),
        "the 60 s stagger must finish all three"
    );
    eprintln!(
        "60 s stagger: all finish, makespan {:.2} s",
        stagger.as_secs_f64()
    );

    // 3. Through the sidecar: one learning run, then three at once.
    w.start_daemon(&[]);
    let learn = w
        .run("ti2v-5b", &["--peak", "34GiB"], &[])
        .wait_with_output()
        .unwrap();
    assert!(
        learn.status.success(),
        "learning run failed: {}",
        String::from_utf8_lossy(&learn.stderr)
    );
    let list = w.profiles(&["list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("ti2v-5b"),
        "no profile learned: {}",
        w.log()
    );

    let t0 = Instant::now();
    let (outs, sidecar) = finish_all(t0, (0..3).map(|_| w.run("ti2v-5b", &[], &[])).collect());
    for o in &outs {
        assert!(
            !is_oom(o),
            "OOM through the sidecar: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success(),
            "job failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for line in w.log().lines().filter(|l| l.contains("msg=\"admitted\"")) {
        eprintln!("  {line}");
    }
    eprintln!(
        "through the sidecar: 0 OOM, makespan {:.2} s ({:.1}% of the stagger's)",
        sidecar.as_secs_f64(),
        100.0 * sidecar.as_secs_f64() / stagger.as_secs_f64()
    );
    assert!(
        sidecar <= stagger,
        "sidecar makespan {sidecar:?} longer than the 60 s stagger's {stagger:?}\n{}",
        w.log()
    );
}
