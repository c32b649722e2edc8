//! Injected faults from `scenarios/faults.toml`, frozen at virtual second 30: per-call,
//! per-GPU errors, and the MPS listing that grows between count and fetch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(unsafe_code)]

mod common;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings as b;

fn setup() -> Nvml {
    let scenario = common::shipped("faults.toml").display().to_string();
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(&scenario)),
        ("HEADROOM_FAKE_STATE_DIR", None),
        ("HEADROOM_FAKE_FREEZE_AT", Some("30")),
    ]);
    common::nvml()
}

#[test]
fn errors_hit_only_their_call_and_gpu() {
    let nvml = setup();
    let g0 = nvml.device_by_index(0).unwrap();
    let g1 = nvml.device_by_index(1).unwrap();
    assert!(matches!(
        g0.temperature(TemperatureSensor::Gpu),
        Err(NvmlError::NotSupported)
    ));
    assert_eq!(g1.temperature(TemperatureSensor::Gpu).unwrap(), 47);
    assert!(matches!(g1.power_usage(), Err(NvmlError::NoPermission)));
    assert_eq!(g0.power_usage().unwrap(), 310_000);
    // GPU 1 is lost only from 60 s on.
    assert_eq!(g1.name().unwrap(), "NVIDIA H100 80GB HBM3");
}

#[test]
fn the_mps_list_grows_between_count_and_fetch() {
    let nvml = setup();
    let g0 = nvml.device_by_index(0).unwrap();
    // nvml-wrapper allocates exactly the counted size: the fetch is one short.
    let r = g0.mps_running_compute_processes();
    assert!(matches!(r, Err(NvmlError::InsufficientSize(_))), "{r:?}");
    // A caller that retries with the count it got back succeeds.
    let h = unsafe { g0.handle() };
    let mut count = 0u32;
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetMPSComputeRunningProcesses_v3(h, &mut count, std::ptr::null_mut())
    };
    assert_eq!(
        (rc, count),
        (b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE, 2)
    );
    let mut buf: Vec<b::nvmlProcessInfo_t> = vec![unsafe { std::mem::zeroed() }; 2];
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetMPSComputeRunningProcesses_v3(h, &mut count, buf.as_mut_ptr())
    };
    assert_eq!(
        (rc, count),
        (b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE, 3)
    );
    buf.resize(3, unsafe { std::mem::zeroed() });
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetMPSComputeRunningProcesses_v3(h, &mut count, buf.as_mut_ptr())
    };
    assert_eq!((rc, count), (b::nvmlReturn_enum_NVML_SUCCESS, 2));
    let mut pids: Vec<u32> = buf[..2].iter().map(|p| p.pid).collect();
    pids.sort();
    assert_eq!(pids, vec![4194341, 4194342]);
    // The compute list is not affected.
    assert_eq!(g0.running_compute_processes().unwrap().len(), 1);
}
