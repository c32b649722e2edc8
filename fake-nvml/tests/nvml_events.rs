//! Xid events and GPM with a running clock (100 virtual seconds per wall second, epoch shared
//! through the state directory): each event exactly once per event set, in order, filtered
//! by registered GPU; timeouts; GPM values between samples follow the activity timeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"
driver_version = "580.95.05"
[clock]
time_scale = 100

[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-00000000-0000-0000-0000-000000000000"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
graphics_active = [[0, 0.0], [1000, 1.0]]

[[gpu]]
name = "NVIDIA A100-SXM4-80GB"
uuid = "GPU-11111111-0000-0000-0000-000000000000"
memory_total = "81920MiB"
sm_count = 108
architecture = "ampere"

[[xid]]
gpu = 0
at_s = 1
xid = 79

[[xid]]
gpu = 1
at_s = 2
xid = 48

[[xid_storm]]
gpu = 0
from_s = 3
duration_s = 0.5
rate_per_s = 10
xid = 31

[[xid]]
gpu = 0
at_s = 1000000
xid = 13
"#;

fn state_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::temp_dir("events-state"))
}

fn setup() -> Nvml {
    static PATH: OnceLock<String> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let p = common::temp_dir("events").join("scenario.toml");
        std::fs::write(&p, SCENARIO).unwrap();
        p.display().to_string()
    });
    common::set_env_once(&[
        ("HEADROOM_FAKE_SCENARIO", Some(path)),
        (
            "HEADROOM_FAKE_STATE_DIR",
            Some(&state_dir().display().to_string()),
        ),
        ("HEADROOM_FAKE_FREEZE_AT", None),
    ]);
    common::nvml()
}

/// Virtual now, from the epoch file the library shares through the state directory.
fn virtual_now() -> f64 {
    let epoch: f64 = std::fs::read_to_string(state_dir().join("epoch"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    (wall - epoch) * 100.0
}

fn xids(set: &nvml_wrapper::EventSet, until_timeout_ms: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        match set.wait(until_timeout_ms) {
            Ok(e) => {
                assert!(e.event_type.contains(EventTypes::CRITICAL_XID_ERROR));
                let xid = match e.event_data {
                    Some(XidError::Value(v)) => v,
                    other => panic!("unexpected event data {other:?}"),
                };
                out.push((e.device.uuid().unwrap(), xid));
            }
            Err(NvmlError::Timeout) => return out,
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn xid_events_arrive_once_per_set_in_order() {
    let nvml = setup();
    let gpu0 = nvml.device_by_index(0).unwrap();
    let gpu1 = nvml.device_by_index(1).unwrap();
    let g0 = gpu0.uuid().unwrap();
    let g1 = gpu1.uuid().unwrap();
    let supported = gpu0.supported_event_types().unwrap();
    assert!(supported.contains(EventTypes::CRITICAL_XID_ERROR));

    let only0 = gpu0
        .register_events(
            EventTypes::CRITICAL_XID_ERROR,
            nvml.create_event_set().unwrap(),
        )
        .unwrap();
    let got = xids(&only0, 300);
    let mut expected = vec![(g0.clone(), 79)];
    expected.extend(std::iter::repeat_n((g0.clone(), 31), 5));
    assert_eq!(got, expected);

    let both = gpu0
        .register_events(
            EventTypes::CRITICAL_XID_ERROR,
            nvml.create_event_set().unwrap(),
        )
        .unwrap();
    let both = gpu1
        .register_events(EventTypes::CRITICAL_XID_ERROR, both)
        .unwrap();
    let got = xids(&both, 50);
    assert_eq!(got[..2], [(g0.clone(), 79), (g1, 48)]);
    assert_eq!(got.len(), 7);

    // Nothing more is due: the wait lasts its timeout and says so.
    let started = Instant::now();
    assert!(matches!(only0.wait(120), Err(NvmlError::Timeout)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(110) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    // Types a GPU does not support are refused.
    let r = gpu0.register_events(
        EventTypes::MIG_CONFIG_CHANGE,
        nvml.create_event_set().unwrap(),
    );
    assert!(matches!(r, Err(e) if matches!(e.error, NvmlError::NotSupported)));
    only0.release_events().unwrap();
}

#[test]
fn gpm_follows_a_running_clock_and_needs_hopper() {
    let nvml = setup();
    let gpu0 = nvml.device_by_index(0).unwrap();
    let before = virtual_now();
    let s1 = gpu0.gpm_sample().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let s2 = gpu0.gpm_sample().unwrap();
    let after = virtual_now();
    std::thread::sleep(Duration::from_millis(30));
    let s3 = gpu0.gpm_sample().unwrap();
    let get = |a: &nvml_wrapper::GpmSample, b: &nvml_wrapper::GpmSample| {
        nvml_wrapper::gpm::gpm_metrics_get(&nvml, a, b, &[GpmMetricId::GraphicsUtil]).unwrap()[0]
            .as_ref()
            .unwrap()
            .value
    };
    // graphics_active rises 0.1 % per virtual second: the mean lies between the two times.
    let v12 = get(&s1, &s2);
    assert!(
        v12 >= before / 10.0 - 1e-6 && v12 <= after / 10.0 + 1e-6,
        "{before} {v12} {after}"
    );
    assert!(get(&s2, &s3) > v12);
    let a100 = nvml.device_by_index(1).unwrap();
    assert!(!a100.gpm_support().unwrap());
    assert!(matches!(a100.gpm_sample(), Err(NvmlError::NotSupported)));
}
