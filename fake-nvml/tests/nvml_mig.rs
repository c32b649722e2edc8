//! The fake NVML on `scenarios/h100-mig.toml` (two 3g.40gb instances) frozen at virtual
//! second 100: MIG handles, their ids, names, memory and processes, utilization not
//! supported, placements, and per-instance GPM samples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(unsafe_code)]

mod common;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings as b;

const MIB: u64 = 1 << 20;
const MIG0: &str = "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca";
const MIG1: &str = "MIG-51c30d73-526a-5ca2-8914-900dfd3ceb1e";

fn setup() -> Nvml {
    let scenario = common::shipped("h100-mig.toml").display().to_string();
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(&scenario)),
        ("HEADROOM_FAKE_STATE_DIR", None),
        ("HEADROOM_FAKE_FREEZE_AT", Some("100")),
    ]);
    common::nvml()
}

#[test]
fn mig_devices_and_their_ids() {
    let nvml = setup();
    let gpu = nvml.device_by_index(0).unwrap();
    let mode = gpu.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (1, 1));
    assert_eq!(gpu.mig_device_count().unwrap(), 7);
    let m0 = gpu.mig_device_by_index(0).unwrap();
    let m1 = gpu.mig_device_by_index(1).unwrap();
    assert!(matches!(
        gpu.mig_device_by_index(2),
        Err(NvmlError::NotFound)
    ));
    assert!(matches!(
        gpu.mig_device_by_index(7),
        Err(NvmlError::InvalidArg)
    ));
    assert!(m0.mig_is_mig_device_handle().unwrap());
    assert_eq!(m0.uuid().unwrap(), MIG0);
    assert_eq!(m1.uuid().unwrap(), MIG1);
    assert_eq!(m0.name().unwrap(), "NVIDIA H100 80GB HBM3 MIG 3g.40gb");
    assert_eq!(
        m1.mig_parent_device().unwrap().uuid().unwrap(),
        gpu.uuid().unwrap()
    );
    assert!(matches!(
        gpu.mig_parent_device(),
        Err(NvmlError::InvalidArg)
    ));
    let ids = |d: &nvml_wrapper::Device| {
        let (mut gi, mut ci) = (0u32, 0u32);
        let h = unsafe { d.handle() };
        let r1 = unsafe { nvml.lib().nvmlDeviceGetGpuInstanceId(h, &mut gi) };
        let r2 = unsafe { nvml.lib().nvmlDeviceGetComputeInstanceId(h, &mut ci) };
        (r1, r2, gi, ci)
    };
    assert_eq!(ids(&m0), (0, 0, 1, 0));
    assert_eq!(ids(&m1), (0, 0, 2, 0));
    assert_eq!(ids(&gpu).0, b::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED);
    let by_uuid = nvml.device_by_uuid(MIG1).unwrap();
    assert!(by_uuid.mig_is_mig_device_handle().unwrap());
    assert_eq!(by_uuid.uuid().unwrap(), MIG1);
}

#[test]
fn memory_and_processes_per_instance() {
    let nvml = setup();
    let gpu = nvml.device_by_index(0).unwrap();
    let m0 = gpu.mig_device_by_index(0).unwrap();
    let mem = m0.memory_info().unwrap();
    assert_eq!(mem.total, 40448 * MIB);
    assert_eq!(mem.used, 22250 * MIB);
    assert_eq!(mem.free, (40448 - 22250) * MIB);
    assert_eq!(gpu.memory_info().unwrap().used, 2 * 22250 * MIB);
    let on_m0 = m0.running_compute_processes().unwrap();
    assert_eq!(on_m0.len(), 1);
    assert_eq!(on_m0[0].pid, 4194320);
    assert_eq!(
        (on_m0[0].gpu_instance_id, on_m0[0].compute_instance_id),
        (Some(1), Some(0))
    );
    assert_eq!(on_m0[0].used_gpu_memory, UsedGpuMemory::Used(22250 * MIB));
    let on_gpu = gpu.running_compute_processes().unwrap();
    let mut gis: Vec<(u32, Option<u32>)> =
        on_gpu.iter().map(|p| (p.pid, p.gpu_instance_id)).collect();
    gis.sort();
    assert_eq!(gis, vec![(4194320, Some(1)), (4194321, Some(2))]);
    assert!(m0.mps_running_compute_processes().unwrap().is_empty());
}

#[test]
fn whole_gpu_queries_are_not_supported_on_mig() {
    let nvml = setup();
    let gpu = nvml.device_by_index(0).unwrap();
    let m0 = gpu.mig_device_by_index(0).unwrap();
    assert!(matches!(
        gpu.utilization_rates(),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(
        m0.utilization_rates(),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(
        m0.temperature(TemperatureSensor::Gpu),
        Err(NvmlError::NotSupported)
    ));
    assert_eq!(gpu.temperature(TemperatureSensor::Gpu).unwrap(), 58);
}

#[test]
fn placements_follow_the_h100_rules() {
    let nvml = setup();
    let gpu = nvml.device_by_index(0).unwrap();
    let h = unsafe { gpu.handle() };
    let placements = |profile_id: u32| {
        let mut count = 0u32;
        let rc = unsafe {
            nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
                h,
                profile_id,
                std::ptr::null_mut(),
                &mut count,
            )
        };
        assert_eq!(rc, 0);
        let mut v: Vec<b::nvmlGpuInstancePlacement_t> =
            vec![b::nvmlGpuInstancePlacement_t { start: 0, size: 0 }; count as usize];
        let rc = unsafe {
            nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
                h,
                profile_id,
                v.as_mut_ptr(),
                &mut count,
            )
        };
        assert_eq!(rc, 0);
        v.iter().map(|p| (p.start, p.size)).collect::<Vec<_>>()
    };
    assert_eq!(placements(9), vec![(0, 4), (4, 4)]);
    assert_eq!(placements(5), vec![(0, 4)]);
    assert_eq!(placements(0), vec![(0, 8)]);
    assert_eq!(placements(14), vec![(0, 2), (2, 2), (4, 2)]);
    assert_eq!(placements(15), vec![(0, 2), (2, 2), (4, 2), (6, 2)]);
    assert_eq!(placements(19), (0..7).map(|s| (s, 1)).collect::<Vec<_>>());
    let mut count = 1u32;
    let mut one = [b::nvmlGpuInstancePlacement_t { start: 0, size: 0 }];
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetGpuInstancePossiblePlacements_v2(h, 9, one.as_mut_ptr(), &mut count)
    };
    assert_eq!(
        (rc, count),
        (b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE, 2)
    );
}

#[test]
fn gpm_per_instance_and_whole_gpu() {
    let nvml = setup();
    let gpu = nvml.device_by_index(0).unwrap();
    let metric = |s1: &nvml_wrapper::GpmSample, s2: &nvml_wrapper::GpmSample| {
        let r = nvml_wrapper::gpm::gpm_metrics_get(&nvml, s1, s2, &[GpmMetricId::GraphicsUtil])
            .unwrap();
        r[0].as_ref().unwrap().value
    };
    // GI 1: [[68, 0.97], [358, 0.98]] at 100 s; GI 2: [[0, 0.95], [200, 0.96]] at 100 s.
    let gi1 = 97.0 + 1.0 * 32.0 / 290.0;
    let a = gpu.gpm_mig_sample(1).unwrap();
    let b2 = gpu.gpm_mig_sample(1).unwrap();
    assert!((metric(&a, &b2) - gi1).abs() < 1e-9);
    let c = gpu.gpm_mig_sample(2).unwrap();
    let d = gpu.gpm_mig_sample(2).unwrap();
    assert!((metric(&c, &d) - 95.5).abs() < 1e-9);
    // Samples of different instances do not mix.
    let mixed = nvml_wrapper::gpm::gpm_metrics_get(&nvml, &a, &c, &[GpmMetricId::GraphicsUtil]);
    assert!(matches!(mixed, Err(NvmlError::InvalidArg)));
    assert!(matches!(gpu.gpm_mig_sample(9), Err(NvmlError::NotFound)));
    // The whole GPU: SM-weighted mean of the instances (60 of 132 SMs each).
    let w1 = gpu.gpm_sample().unwrap();
    let w2 = gpu.gpm_sample().unwrap();
    let whole = (gi1 * 60.0 + 95.5 * 60.0) / 132.0;
    assert!((metric(&w1, &w2) - whole).abs() < 1e-9);
    let m0 = gpu.mig_device_by_index(0).unwrap();
    assert!(matches!(m0.gpm_sample(), Err(NvmlError::NotSupported)));
}
