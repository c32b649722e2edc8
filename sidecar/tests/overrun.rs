//! Issue 3, acceptance 2: a workload whose peak grows 30% past its learned peak (TI2V-5B's
//! final VAE decode, from workload second 211 on) fails alone on its MPS memory limit
//! (learned peak × 1.1); its neighbours finish; the launcher reports a confirmed OOM.
//!
//! A uniform overrun that stays under the limit (e.g. a steady phase 30% above the profile)
//! is not caught by a static MPS limit and can still hurt neighbours admitted on the learned
//! profile; `docs/admission.md` says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn an_overrunning_job_fails_alone() {
    let mut w = World::h100("overrun", 40.0);
    w.start_daemon(&[]);
    let learn = w
        .run("ti2v-5b", &["--peak", "34GiB"], &[])
        .wait_with_output()
        .unwrap();
    assert!(
        learn.status.success(),
        "{}",
        String::from_utf8_lossy(&learn.stderr)
    );

    let neighbours: Vec<_> = (0..2).map(|_| w.run("ti2v-5b", &[], &[])).collect();
    let overrun = w.run(
        "ti2v-5b",
        &[],
        &["--overrun", "1.3", "--overrun-from", "211"],
    );
    let bad = overrun.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "the overrunning job must fail: {err}"
    );
    assert!(
        err.contains("CUDA out of memory") && err.contains("MPS client's memory limit"),
        "{err}"
    );
    for n in neighbours {
        let o = n.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "a neighbour failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!is_oom(&o));
    }
    let metrics = scrape(metrics_addr(&w.log()));
    let line = metrics
        .lines()
        .find(|l| l.starts_with("headroom_oom_events_total{") && l.contains("source=\"launcher\""))
        .unwrap_or_else(|| panic!("no launcher OOM counted:\n{metrics}"));
    assert!(
        line.contains("workload=\"ti2v-5b\"")
            && line.contains("gpu_uuid=\"GPU-")
            && line.ends_with(" 1"),
        "{line}"
    );
    // The OOM run raised the profile, it never lowers it.
    let show = w.profiles(&["list"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("ti2v-5b"));
}
