//! `scenarios/large.toml` (8 GPUs × 7 MIG instances, 48 MPS clients per GPU) frozen at
//! virtual second 100: every MIG device is reachable, GPU-level lists are the union of the
//! instance lists, and a full sweep stays fast.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use nvml_wrapper::Nvml;
use std::time::{Duration, Instant};

fn setup() -> Nvml {
    let scenario = common::shipped("large.toml").display().to_string();
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(&scenario)),
        ("HEADROOM_FAKE_STATE_DIR", None),
        ("HEADROOM_FAKE_FREEZE_AT", Some("100")),
    ]);
    common::nvml()
}

#[test]
fn a_full_sweep_of_56_mig_devices() {
    let nvml = setup();
    let started = Instant::now();
    assert_eq!(nvml.device_count().unwrap(), 8);
    let mut clients = 0;
    for i in 0..8 {
        let gpu = nvml.device_by_index(i).unwrap();
        assert_eq!(gpu.mig_device_count().unwrap(), 7);
        let mut per_instance = 0;
        for slot in 0..7 {
            let mig = gpu.mig_device_by_index(slot).unwrap();
            assert_eq!(mig.name().unwrap(), "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
            let mps = mig.mps_running_compute_processes().unwrap();
            assert!(mps.len() <= 7);
            per_instance += mps.len();
            // One MPS server per instance, in the compute list.
            assert_eq!(mig.running_compute_processes().unwrap().len(), 1);
            let mem = mig.memory_info().unwrap();
            assert!(mem.used <= mem.total);
        }
        let on_gpu = gpu.mps_running_compute_processes().unwrap();
        assert_eq!(on_gpu.len(), per_instance);
        assert!(per_instance > 0 && per_instance <= 48);
        clients += per_instance;
    }
    assert!(clients > 8 * 24, "most clients run at 100 s: {clients}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
