//! Initialisation rules, in one sequential test (it changes the environment between steps):
//! no scenario, a broken scenario, ref-counted init/shutdown, calls before init and after
//! the last shutdown, an injected init failure and an injected hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(unsafe_code)]

mod common;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper_sys::bindings as b;
use nvml_wrapper_sys::bindings::NvmlLib;
use std::time::{Duration, Instant};

fn set(key: &str, value: Option<&str>) {
    // SAFETY: this file has a single test, and no other thread of this process reads the
    // environment while it runs.
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

fn try_init() -> Result<Nvml, NvmlError> {
    Nvml::builder()
        .lib_path(common::lib_path().as_os_str())
        .init()
}

const SCENARIO: &str = r#"
driver_version = "580.95.05"
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-00000000-0000-0000-0000-000000000000"
memory_total = "80GiB"
sm_count = 132
architecture = "hopper"

[[fault]]
call = "nvmlDeviceGetName"
gpu = 0
hang_ms = 200

[[fault]]
call = "nvmlInitWithFlags"
error = "LIB_RM_VERSION_MISMATCH"
"#;

#[test]
fn init_rules() {
    set("HEADROOM_FAKE_STATE_DIR", None);
    set("HEADROOM_FAKE_FREEZE_AT", None);

    // No scenario: the driver is "not loaded".
    set("HEADROOM_FAKE_SCENARIO", None);
    assert!(matches!(try_init(), Err(NvmlError::DriverNotLoaded)));

    // A broken scenario: an error, and one line on stderr naming the problem.
    let dir = common::temp_dir("init");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "driver_version = \"1\"\n[[gpu]]\nname = \"x\"\n").unwrap();
    set("HEADROOM_FAKE_SCENARIO", Some(bad.to_str().unwrap()));
    assert!(matches!(try_init(), Err(NvmlError::Unknown)));

    // Calls before init.
    let lib = unsafe { NvmlLib::new(common::lib_path()) }.unwrap();
    let mut n = 0u32;
    assert_eq!(
        unsafe { lib.nvmlDeviceGetCount_v2(&mut n) },
        b::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
    );
    assert_eq!(
        unsafe { lib.nvmlShutdown() },
        b::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
    );

    let good = dir.join("good.toml");
    std::fs::write(&good, SCENARIO).unwrap();
    set("HEADROOM_FAKE_SCENARIO", Some(good.to_str().unwrap()));

    // Ref-counted: two inits need two shutdowns.
    assert_eq!(
        unsafe { lib.nvmlInit_v2() },
        b::nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(
        unsafe { lib.nvmlInit_v2() },
        b::nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(
        unsafe { lib.nvmlShutdown() },
        b::nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(
        unsafe { lib.nvmlDeviceGetCount_v2(&mut n) },
        b::nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(n, 1);
    assert_eq!(
        unsafe { lib.nvmlShutdown() },
        b::nvmlReturn_enum_NVML_SUCCESS
    );
    assert_eq!(
        unsafe { lib.nvmlDeviceGetCount_v2(&mut n) },
        b::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
    );

    // An injected init fault refuses the reference.
    assert_eq!(
        unsafe { lib.nvmlInitWithFlags(0) },
        b::nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH
    );
    assert_eq!(
        unsafe { lib.nvmlDeviceGetCount_v2(&mut n) },
        b::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
    );

    // An injected hang delays the call, then it answers.
    let nvml = try_init().unwrap();
    let d = nvml.device_by_index(0).unwrap();
    let started = Instant::now();
    assert_eq!(d.name().unwrap(), "NVIDIA H100 80GB HBM3");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let started = Instant::now();
    d.uuid().unwrap();
    assert!(started.elapsed() < Duration::from_millis(150));
}
