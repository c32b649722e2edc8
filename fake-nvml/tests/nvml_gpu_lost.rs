//! `scenarios/faults.toml` frozen at virtual second 90: GPU 1 is lost (every call about it
//! fails with GPU_IS_LOST), GPU 0 answers; the Xid events before 90 s are delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;

fn setup() -> Nvml {
    let scenario = common::shipped("faults.toml").display().to_string();
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(&scenario)),
        ("HEADROOM_FAKE_STATE_DIR", None),
        ("HEADROOM_FAKE_FREEZE_AT", Some("90")),
    ]);
    common::nvml()
}

#[test]
fn a_lost_gpu_fails_every_call_about_it() {
    let nvml = setup();
    assert_eq!(nvml.device_count().unwrap(), 2);
    assert!(matches!(nvml.device_by_index(1), Err(NvmlError::GpuLost)));
    assert!(matches!(
        nvml.device_by_uuid("GPU-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a"),
        Err(NvmlError::GpuLost)
    ));
    let g0 = nvml.device_by_index(0).unwrap();
    assert_eq!(g0.memory_info().unwrap().total, 81559 << 20);
    // The MPS fault window (20–40 s) is over.
    assert_eq!(g0.mps_running_compute_processes().unwrap().len(), 2);
}

#[test]
fn past_xid_events_are_delivered() {
    let nvml = setup();
    let g0 = nvml.device_by_index(0).unwrap();
    let set = g0
        .register_events(
            EventTypes::CRITICAL_XID_ERROR,
            nvml.create_event_set().unwrap(),
        )
        .unwrap();
    let e = set.wait(10).unwrap();
    assert_eq!(e.event_data, Some(XidError::Value(13)));
    assert!(
        matches!(set.wait(10), Err(NvmlError::Timeout)),
        "frozen before the 200 s storm"
    );
}
