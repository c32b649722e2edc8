//! The fake NVML through nvml-wrapper, on `scenarios/h100-mps-wan22.toml` frozen at virtual
//! second 230 (client 4194306 in its VAE peak, 4194307 steady), plus one live job registered
//! in the state directory: identity, versions, memory, MPS vs compute process lists, sensors,
//! MIG table with MIG off, GPM, shared instance, and NVML's null-pointer rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(unsafe_code)]

mod common;

use headroom_fake::{LiveJob, StateDir};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::{DeviceArchitecture, UsedGpuMemory};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings as b;
use std::sync::OnceLock;

const MIB: u64 = 1 << 20;
const UUID: &str = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5";

/// The library, with a live job for this test process registered first.
fn setup() -> Nvml {
    static STATE: OnceLock<String> = OnceLock::new();
    let state = STATE.get_or_init(|| {
        let dir = common::temp_dir("mps-state");
        let s = StateDir::open(&dir).unwrap();
        s.write(&LiveJob {
            pid: std::process::id(),
            start_ticks: headroom_fake::state::process_start_ticks(std::process::id()),
            device_uuid: UUID.into(),
            memory_bytes: 5120 * MIB,
            name: "fake-job".into(),
            mps: true,
            workload: "ti2v-5b".into(),
            memory_limit_bytes: None,
        })
        .unwrap();
        dir.display().to_string()
    });
    let scenario = common::shipped("h100-mps-wan22.toml").display().to_string();
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(&scenario)),
        ("HEADROOM_FAKE_STATE_DIR", Some(state)),
        ("HEADROOM_FAKE_FREEZE_AT", Some("230")),
    ]);
    common::nvml()
}

#[test]
fn identity_and_versions() {
    let nvml = setup();
    assert_eq!(nvml.device_count().unwrap(), 1);
    assert_eq!(nvml.sys_driver_version().unwrap(), "580.95.05");
    assert_eq!(nvml.sys_nvml_version().unwrap(), "13.580.95.05");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 13000);
    let d = nvml.device_by_index(0).unwrap();
    assert_eq!(d.name().unwrap(), "NVIDIA H100 80GB HBM3");
    assert_eq!(d.uuid().unwrap(), UUID);
    assert_eq!(d.index().unwrap(), 0);
    assert_eq!(d.architecture().unwrap(), DeviceArchitecture::Hopper);
    assert!(!d.mig_is_mig_device_handle().unwrap());
    assert_eq!(nvml.device_by_uuid(UUID).unwrap().index().unwrap(), 0);
    assert!(matches!(
        nvml.device_by_uuid("GPU-nope"),
        Err(NvmlError::NotFound)
    ));
    assert!(matches!(
        nvml.device_by_index(1),
        Err(NvmlError::InvalidArg)
    ));
}

#[test]
fn memory_counts_every_process_and_the_reserve() {
    let nvml = setup();
    let m = nvml.device_by_index(0).unwrap().memory_info().unwrap();
    assert_eq!(m.total, 81559 * MIB);
    assert_eq!(m.reserved, 480 * MIB);
    // 66 (server) + 33984 (peak) + 22250 (steady) + 5120 (live job) MiB.
    assert_eq!(m.used, (66 + 33984 + 22250 + 5120) * MIB);
    assert_eq!(m.free, m.total - m.reserved - m.used);
    // The v1 struct counts the reserve as used.
    let d = nvml.device_by_index(0).unwrap();
    let mut v1: b::nvmlMemory_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { nvml.lib().nvmlDeviceGetMemoryInfo(d.handle(), &mut v1) };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_SUCCESS);
    assert_eq!(v1.used, m.used + m.reserved);
    // A wrong struct version is refused.
    let mut v2: b::nvmlMemory_v2_t = unsafe { std::mem::zeroed() };
    v2.version = 1;
    let rc = unsafe { nvml.lib().nvmlDeviceGetMemoryInfo_v2(d.handle(), &mut v2) };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
}

#[test]
fn mps_clients_and_compute_processes_are_listed_apart() {
    let nvml = setup();
    let d = nvml.device_by_index(0).unwrap();
    let mps = d.mps_running_compute_processes().unwrap();
    let mut pids: Vec<(u32, u64)> = mps
        .iter()
        .map(|p| match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => (p.pid, b / MIB),
            UsedGpuMemory::Unavailable => (p.pid, 0),
        })
        .collect();
    pids.sort();
    let me = std::process::id();
    let mut expected = vec![(4194306, 33984), (4194307, 22250), (me, 5120)];
    expected.sort();
    assert_eq!(pids, expected);
    assert!(
        mps.iter()
            .all(|p| p.gpu_instance_id.is_none() && p.compute_instance_id.is_none())
    );
    let compute = d.running_compute_processes().unwrap();
    assert_eq!(compute.len(), 1);
    assert_eq!(compute[0].pid, 4194305);
    assert_eq!(compute[0].used_gpu_memory, UsedGpuMemory::Used(66 * MIB));
    assert_eq!(
        nvml.sys_process_name(4194305, 64).unwrap(),
        "nvidia-cuda-mps-server"
    );
    assert_eq!(nvml.sys_process_name(me, 64).unwrap(), "fake-job");
    assert_eq!(
        nvml.sys_process_name(4194305, 7).unwrap(),
        "nvidia",
        "cropped to length − 1"
    );
    assert!(matches!(
        nvml.sys_process_name(1, 64),
        Err(NvmlError::NotFound)
    ));
}

#[test]
fn a_null_buffer_gets_the_count() {
    let nvml = setup();
    let d = nvml.device_by_index(0).unwrap();
    let mut count = 0u32;
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetMPSComputeRunningProcesses_v3(
            d.handle(),
            &mut count,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
    assert_eq!(count, 3);
    // Too small a buffer: the count again.
    let mut one: [b::nvmlProcessInfo_t; 1] = unsafe { std::mem::zeroed() };
    let mut count = 1u32;
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetMPSComputeRunningProcesses_v3(
            d.handle(),
            &mut count,
            one.as_mut_ptr(),
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
    assert_eq!(count, 3);
    // Null count pointer, null output pointers, bad handles.
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetMPSComputeRunningProcesses_v3(
            d.handle(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    let rc = unsafe { nvml.lib().nvmlDeviceGetCount_v2(std::ptr::null_mut()) };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    let mut t = 0u32;
    let bogus = std::ptr::without_provenance_mut::<b::nvmlDevice_st>(0x1234);
    let rc = unsafe { nvml.lib().nvmlDeviceGetTemperature(bogus, 0, &mut t) };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    let mut small = [0 as std::ffi::c_char; 8];
    let rc = unsafe {
        nvml.lib()
            .nvmlDeviceGetName(d.handle(), small.as_mut_ptr(), 8)
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
}

#[test]
fn sensors_follow_the_scenario() {
    let nvml = setup();
    let d = nvml.device_by_index(0).unwrap();
    // temperature_c = [[0, 48], [120, 62], [240, 66], ...] → 65.67 at 230 s.
    assert_eq!(d.temperature(TemperatureSensor::Gpu).unwrap(), 66);
    // power_w [[120, 616], [240, 692]] → 685.67 W at 230 s, in milliwatts.
    assert_eq!(d.power_usage().unwrap(), 685_667);
    assert_eq!(d.clock_info(Clock::SM).unwrap(), 1980);
    assert_eq!(d.clock_info(Clock::Graphics).unwrap(), 1980);
    assert_eq!(d.clock_info(Clock::Memory).unwrap(), 2619);
    let u = d.utilization_rates().unwrap();
    assert_eq!((u.gpu, u.memory), (100, 38));
}

#[test]
fn mig_table_answers_with_mig_off() {
    let nvml = setup();
    let d = nvml.device_by_index(0).unwrap();
    let mode = d.mig_mode().unwrap();
    assert_eq!((mode.current, mode.pending), (0, 0));
    assert_eq!(d.mig_device_count().unwrap(), 0);
    let p = d
        .profile_info(b::NVML_GPU_INSTANCE_PROFILE_3_SLICE)
        .unwrap();
    assert_eq!(
        (
            p.id,
            p.slice_count,
            p.instance_count,
            p.multiprocessor_count
        ),
        (9, 3, 2, 60)
    );
    assert_eq!(p.memory_size_mb, 40448);
    let p = d
        .profile_info(b::NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1)
        .unwrap();
    assert_eq!((p.id, p.ofa_count, p.instance_count), (20, 1, 1));
    assert!(matches!(
        d.profile_info(b::NVML_GPU_INSTANCE_PROFILE_6_SLICE),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(d.profile_info(99), Err(NvmlError::InvalidArg)));
    let mut v2: b::nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
    v2.version = (std::mem::size_of::<b::nvmlGpuInstanceProfileInfo_v2_t>() as u32) | (2 << 24);
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstanceProfileInfoV(
            d.handle(),
            b::NVML_GPU_INSTANCE_PROFILE_7_SLICE,
            &mut v2,
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_SUCCESS);
    let name = unsafe { std::ffi::CStr::from_ptr(v2.name.as_ptr()) };
    assert_eq!(name.to_str().unwrap(), "MIG 7g.80gb");
    assert_eq!(
        (v2.id, v2.multiprocessorCount, v2.copyEngineCount),
        (0, 132, 8)
    );
    // Placements answer with MIG mode off too (NVML: "regardless of whether MIG is enabled").
    let mut count = 0u32;
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
            d.handle(),
            9,
            std::ptr::null_mut(),
            &mut count,
        )
    };
    assert_eq!((rc, count), (b::nvmlReturn_enum_NVML_SUCCESS, 2));
    let mut v = vec![b::nvmlGpuInstancePlacement_t { start: 0, size: 0 }; 2];
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
            d.handle(),
            9,
            v.as_mut_ptr(),
            &mut count,
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_SUCCESS);
    assert_eq!(
        v.iter().map(|p| (p.start, p.size)).collect::<Vec<_>>(),
        vec![(0, 4), (4, 4)]
    );
    let rc = unsafe {
        nvml.lib().nvmlDeviceGetGpuInstancePossiblePlacements_v2(
            d.handle(),
            42,
            std::ptr::null_mut(),
            &mut count,
        )
    };
    assert_eq!(rc, b::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED);
}

#[test]
fn gpm_metrics_between_two_samples() {
    let nvml = setup();
    let d = nvml.device_by_index(0).unwrap();
    assert!(d.gpm_support().unwrap());
    let s1 = d.gpm_sample().unwrap();
    let s2 = d.gpm_sample().unwrap();
    let ids = [
        GpmMetricId::GraphicsUtil,
        GpmMetricId::SmUtil,
        GpmMetricId::AnyTensorUtil,
        GpmMetricId::DramBwUtil,
    ];
    let r = nvml_wrapper::gpm::gpm_metrics_get(&nvml, &s1, &s2, &ids).unwrap();
    // Frozen clock: both samples at 230 s; graphics [[40, 0.93], [240, 0.95]] → 0.949.
    let v = |i: usize| r[i].as_ref().unwrap().value;
    assert!((v(0) - 94.9).abs() < 1e-9, "{}", v(0));
    assert!((v(1) - 83.85).abs() < 1e-9, "{}", v(1));
    assert!((v(2) - 44.85).abs() < 1e-9, "{}", v(2));
    assert_eq!(r[0].as_ref().unwrap().metric_info.unit, "%");
    assert!(matches!(r[3], Err(NvmlError::NotSupported)));
    assert!(
        matches!(d.gpm_mig_sample(1), Err(NvmlError::NotSupported)),
        "MIG mode is off"
    );
}

#[test]
fn loading_the_library_twice_shares_one_instance() {
    let a = setup();
    let b2 = common::nvml();
    assert_eq!(b2.device_count().unwrap(), 1);
    b2.shutdown().unwrap();
    // The first reference still works.
    assert_eq!(
        a.device_by_index(0).unwrap().name().unwrap(),
        "NVIDIA H100 80GB HBM3"
    );
    let msg = unsafe {
        std::ffi::CStr::from_ptr(
            a.lib()
                .nvmlErrorString(b::nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST),
        )
    };
    assert_eq!(msg.to_str().unwrap(), "GPU is lost");
}
