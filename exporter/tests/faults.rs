//! Faults from `scenarios/faults.toml` at chosen moments of its clock: the scrape keeps
//! working, the affected collector reports failure with a reason, others are unaffected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn at(t: &str) -> String {
    let scenario = repo_root().join("scenarios/faults.toml");
    let e = start(
        &[
            "--simulate",
            scenario.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--interval",
            "100ms",
        ],
        &[("HEADROOM_FAKE_FREEZE_AT", t)],
    );
    metrics_after(&e, 3)
}

fn success(text: &str, collector: &str) -> f64 {
    samples(text, "headroom_collector_success")
        .into_iter()
        .find(|(l, _)| label(l, "collector") == Some(collector))
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn mps_listing_that_outgrows_its_count_still_succeeds() {
    // 20–40 s: the MPS listing answers INSUFFICIENT_SIZE to a fetch of exactly the counted size
    // (a client started between count and fetch); nvml-wrapper's own listing would fail here.
    let text = at("30");
    assert_eq!(success(&text, "process"), 1.0, "{text}");
    let clients = samples(&text, "headroom_process_memory_used_bytes")
        .into_iter()
        .filter(|(l, _)| label(l, "gpu") == Some("0") && label(l, "mps") == Some("true"))
        .count();
    assert_eq!(clients, 2, "{text}");
}

#[test]
fn a_lost_gpu_fails_its_collectors_and_spares_the_other() {
    // 60–120 s: every call about GPU 1 answers GPU_IS_LOST.
    let text = at("90");
    assert_eq!(success(&text, "device"), 0.0);
    assert!(
        samples(&text, "headroom_collector_errors_total")
            .iter()
            .any(|(l, _)| label(l, "collector") == Some("device")
                && label(l, "reason") == Some("gpu_lost")),
        "{text}"
    );
    let gpus: Vec<String> = samples(&text, "headroom_gpu_memory_used_bytes")
        .into_iter()
        .map(|(l, _)| label(&l, "gpu").unwrap().to_string())
        .collect();
    assert_eq!(
        gpus,
        vec!["0"],
        "GPU 0 must still be reported, GPU 1's memory is unknown"
    );
    assert!(!samples(&text, "headroom_process_memory_used_bytes").is_empty());
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn not_supported_is_absent_not_a_failure() {
    // Temperature of GPU 0 is NOT_SUPPORTED throughout; power of GPU 1 is NO_PERMISSION.
    let text = at("10");
    let temps: Vec<String> = samples(&text, "headroom_gpu_temperature_celsius")
        .into_iter()
        .map(|(l, _)| label(&l, "gpu").unwrap().to_string())
        .collect();
    assert_eq!(temps, vec!["1"]);
    assert!(
        samples(&text, "headroom_collector_errors_total")
            .iter()
            .all(|(l, _)| label(l, "reason") != Some("not_supported")),
        "{text}"
    );
    assert!(
        samples(&text, "headroom_collector_errors_total")
            .iter()
            .any(|(l, _)| label(l, "reason") == Some("no_permission"))
    );
}
