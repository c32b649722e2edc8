//! The fault matrix: every NVML call the exporter makes, failing with each relevant error,
//! against the real exporter on the fake NVML. The exporter keeps serving; the affected
//! collector reports `headroom_collector_success 0` and counts the error by reason; the
//! other collectors stay at 1; the series the fault does not touch stay; no value turns into
//! a fake 0; and the collector recovers when the fault ends. "Not supported" is absent, not a
//! failure, where the contract says so (`docs/metrics.md`).
//!
//! [`MATRIX`] lists the calls; `matrix_covers_every_call` checks it against the calls the
//! fake NVML actually received from the exporter (`HEADROOM_FAKE_CALL_LOG`) and the call
//! names in `core/src/`, so a new call cannot be missed silently.
//!
//! Calls made every cycle get one exporter each, with one 2 s fault window per error in
//! virtual time (the test writes the fake's epoch, so it knows the clock). Calls made once
//! (identity, driver version, event-set setup, process names) get one exporter per error,
//! faulted from the start. Everything runs in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The collector a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coll {
    Device,
    Process,
    Gpm,
    Xid,
}

impl Coll {
    fn name(self) -> &'static str {
        match self {
            Coll::Device => "device",
            Coll::Process => "process",
            Coll::Gpm => "gpm",
            Coll::Xid => "xid",
        }
    }
}

/// When the exporter makes the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    /// Every cycle (or every event): one exporter, a window per error.
    Cycle,
    /// Once, retried until it succeeds: faulted from the start, then recovers.
    Once,
    /// Once at start-up of the Xid listener, never retried: the collector stays failed.
    Setup,
}

/// What `NOT_SUPPORTED` from the call means.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NotSupported {
    /// The value is absent; the collector still succeeds.
    Absent,
    /// A failure with reason `not_supported` (the call must work on any GPU).
    Failure,
}

/// One call of the backend.
struct Call {
    name: &'static str,
    coll: Coll,
    /// The GPU the fault targets (`None`: any, e.g. calls about no device).
    gpu: Option<u32>,
    when: When,
    ns: NotSupported,
}

const fn c(name: &'static str, coll: Coll, gpu: Option<u32>, when: When, ns: NotSupported) -> Call {
    Call {
        name,
        coll,
        gpu,
        when,
        ns,
    }
}

use Coll::*;
use NotSupported::{Absent, Failure};
use When::*;

/// GPU 0 is a plain H100 under MPS; GPU 1 an H100 in MIG mode (MIG calls target it).
static MATRIX: &[Call] = &[
    c("nvmlSystemGetDriverVersion", Device, None, Once, Absent),
    c("nvmlDeviceGetCount_v2", Device, None, Cycle, Failure),
    c(
        "nvmlDeviceGetHandleByIndex_v2",
        Device,
        Some(0),
        Cycle,
        Failure,
    ),
    c("nvmlDeviceGetUUID", Device, Some(0), Once, Absent),
    c("nvmlDeviceGetUUID", Device, Some(1), Cycle, Absent),
    c("nvmlDeviceGetName", Device, Some(0), Once, Absent),
    c("nvmlDeviceGetName", Device, Some(1), Cycle, Absent),
    c("nvmlDeviceGetMigMode", Device, Some(1), Cycle, Absent),
    c("nvmlDeviceGetMemoryInfo_v2", Device, Some(0), Cycle, Absent),
    c("nvmlDeviceGetMemoryInfo_v2", Device, Some(1), Cycle, Absent),
    c("nvmlDeviceGetTemperature", Device, Some(0), Cycle, Absent),
    c("nvmlDeviceGetPowerUsage", Device, Some(0), Cycle, Absent),
    c("nvmlDeviceGetClockInfo", Device, Some(0), Cycle, Absent),
    c(
        "nvmlDeviceGetUtilizationRates",
        Device,
        Some(0),
        Cycle,
        Absent,
    ),
    c(
        "nvmlDeviceGetMaxMigDeviceCount",
        Device,
        Some(1),
        Cycle,
        Absent,
    ),
    c(
        "nvmlDeviceGetMigDeviceHandleByIndex",
        Device,
        Some(1),
        Cycle,
        Failure,
    ),
    c("nvmlDeviceGetGpuInstanceId", Device, Some(1), Cycle, Absent),
    c(
        "nvmlDeviceGetComputeInstanceId",
        Device,
        Some(1),
        Cycle,
        Absent,
    ),
    c(
        "nvmlDeviceGetComputeRunningProcesses_v3",
        Process,
        Some(0),
        Cycle,
        Absent,
    ),
    c(
        "nvmlDeviceGetMPSComputeRunningProcesses_v3",
        Process,
        Some(0),
        Cycle,
        Absent,
    ),
    c("nvmlSystemGetProcessName", Process, None, Once, Absent),
    c("nvmlGpmQueryDeviceSupport", Gpm, Some(0), Once, Absent),
    c("nvmlGpmSampleAlloc", Gpm, None, Cycle, Absent),
    c("nvmlGpmSampleGet", Gpm, Some(0), Cycle, Absent),
    c("nvmlGpmMigSampleGet", Gpm, Some(1), Cycle, Absent),
    c("nvmlGpmMetricsGet", Gpm, None, Cycle, Absent),
    c("nvmlEventSetCreate", Xid, None, Setup, Failure),
    c(
        "nvmlDeviceGetSupportedEventTypes",
        Xid,
        Some(0),
        Setup,
        Absent,
    ),
    c("nvmlDeviceRegisterEvents", Xid, Some(0), Setup, Failure),
    c("nvmlEventSetWait_v2", Xid, None, Cycle, Failure),
    c("nvmlDeviceGetIndex", Xid, Some(0), Cycle, Failure),
];

/// Calls the exporter makes that are not in the matrix, and why.
const NOT_IN_MATRIX: &[(&str, &str)] = &[
    (
        "nvmlInit_v2",
        "start-up: failing it stops the exporter with a clear error (exit 3), tested below",
    ),
    (
        "nvmlShutdown",
        "at exit only; its result is ignored (nvml-wrapper's Drop)",
    ),
    (
        "nvmlGpmSampleFree",
        "frees a sample (Drop); a failure cannot affect a value",
    ),
    (
        "nvmlEventSetFree",
        "frees the event set at exit (Drop); nothing to report",
    ),
    (
        "nvmlErrorString",
        "describes an error; the fake cannot fail it",
    ),
];

/// Calls in `core/src/nvml` the exporter does not make (the call log proves it).
const NOT_CALLED_BY_EXPORTER: &[(&str, &str)] = &[
    (
        "nvmlDeviceGetGpuInstanceProfileInfo",
        "MIG profile table (unversioned fallback): sidecar plan only",
    ),
    (
        "nvmlDeviceGetGpuInstanceProfileInfoV",
        "MIG profile table: sidecar plan only",
    ),
    (
        "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
        "MIG placements: sidecar plan only",
    ),
];

/// The errors of the matrix, the reason label each must produce, in window order.
const ERRORS: &[(&str, &str)] = &[
    ("NOT_SUPPORTED", "not_supported"),
    ("NO_PERMISSION", "no_permission"),
    ("GPU_IS_LOST", "gpu_lost"),
    ("UNKNOWN", "unknown"),
    ("INSUFFICIENT_SIZE", "insufficient_size"),
    ("UNINITIALIZED", "uninitialized"),
];

/// First fault window (virtual s = wall s after the epoch), and each window's length.
const FIRST: f64 = 3.0;
const WINDOW: f64 = 2.0;
const INTERVAL: &str = "200ms";

/// Two GPUs: GPU 0 a plain H100 with an MPS server, two MPS clients and a compute process;
/// GPU 1 an H100 in MIG mode (2 × 3g.40gb) with a process in each. Constant values, so that
/// a value turning into 0 shows. An Xid 13 every 100 ms on GPU 0 keeps the event path busy.
fn scenario(faults: &str) -> String {
    format!(
        r#"
driver_version = "580.95.05"
cuda_version = "13.0"

[clock]
time_scale = 1.0

[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
memory_total = "81559MiB"
memory_reserved = "480MiB"
sm_count = 132
architecture = "hopper"
mps = true
mig_profiles = "h100-80gb"
temperature_c = 51
power_w = 310
utilization_percent = 50
graphics_active = 0.5
sm_active = 0.45
tensor_active = 0.2

[[gpu.process]]
pid = 4194340
name = "nvidia-cuda-mps-server"
memory = "66MiB"
contends = false

[[gpu.process]]
pid = 4194341
mps = true
memory = "12GiB"

[[gpu.process]]
pid = 4194342
mps = true
memory = "4GiB"

[[gpu.process]]
pid = 4194343
name = "trainer"
memory = "2GiB"

[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5"
memory_total = "81559MiB"
memory_reserved = "480MiB"
sm_count = 132
architecture = "hopper"
mig_mode = true
mig_profiles = "h100-80gb"
temperature_c = 58
power_w = 540

[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca"
gpu_instance_id = 1
graphics_active = 0.6
sm_active = 0.5
tensor_active = 0.3

[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-51c30d73-526a-5ca2-8914-900dfd3ceb1e"
gpu_instance_id = 2
graphics_active = 0.7
sm_active = 0.6
tensor_active = 0.4

[[gpu.process]]
pid = 4194320
mig = "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca"
memory = "20GiB"

[[gpu.process]]
pid = 4194321
mig = "MIG-51c30d73-526a-5ca2-8914-900dfd3ceb1e"
memory = "30GiB"

[[xid_storm]]
gpu = 0
from_s = 0
duration_s = 3600
rate_per_s = 10
xid = 13
{faults}"#
    )
}

fn fault_toml(call: &Call, error: &str, from: f64, until: Option<f64>, extra: &str) -> String {
    let gpu = call.gpu.map_or(String::new(), |g| format!("gpu = {g}\n"));
    let until = until.map_or(String::new(), |u| format!("until_s = {u}\n"));
    format!(
        "\n[[fault]]\ncall = \"{}\"\n{gpu}error = \"{error}\"\nfrom_s = {from}\n{until}{extra}",
        call.name
    )
}

/// A private directory with the scenario and the fake's state dir, whose epoch is set to
/// now, so that virtual time = wall seconds since [`Run::t0`].
struct Run {
    dir: PathBuf,
    t0: Instant,
    exporter: Exporter,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("headroom-fm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("fake")).unwrap();
    dir
}

fn start_run(tag: &str, faults: &str, envs: &[(&str, &str)]) -> Run {
    let dir = dir(tag);
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario(faults)).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    std::fs::write(dir.join("fake/epoch"), format!("{}", now.as_secs_f64())).unwrap();
    let t0 = Instant::now();
    let state = dir.join("fake");
    let mut all: Vec<(&str, &str)> = vec![("HEADROOM_FAKE_STATE_DIR", state.to_str().unwrap())];
    all.extend_from_slice(envs);
    let exporter = start(
        &[
            "--simulate",
            path.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--interval",
            INTERVAL,
        ],
        &all,
    );
    Run { dir, t0, exporter }
}

impl Run {
    fn sleep_until(&self, virtual_s: f64) {
        let at = self.t0 + Duration::from_secs_f64(virtual_s);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    }

    fn scrape(&self) -> Scrape {
        let (mut status, mut body) = get(self.exporter.addr, "/metrics");
        // Only before the first collection may it answer 503.
        while status == 503 && body.contains("first collection") && self.t0.elapsed().as_secs() < 20
        {
            std::thread::sleep(Duration::from_millis(20));
            (status, body) = get(self.exporter.addr, "/metrics");
        }
        assert_eq!(status, 200, "the exporter must keep serving: {body}");
        assert!(body.ends_with("# EOF\n"), "truncated exposition: {body}");
        Scrape::new(body)
    }
}

/// One parsed exposition.
struct Scrape {
    text: String,
    /// "name{labels}" → value.
    values: BTreeMap<String, f64>,
}

impl Scrape {
    fn new(text: String) -> Self {
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        Self { text, values }
    }

    fn success(&self, coll: Coll) -> Option<f64> {
        self.values
            .get(&format!(
                "headroom_collector_success{{collector=\"{}\"}}",
                coll.name()
            ))
            .copied()
    }

    fn errors(&self, coll: Coll, reason: &str) -> f64 {
        self.values
            .get(&format!(
                "headroom_collector_errors_total{{collector=\"{}\",reason=\"{reason}\"}}",
                coll.name()
            ))
            .copied()
            .unwrap_or(0.0)
    }

    fn any_errors(&self) -> bool {
        self.values
            .keys()
            .any(|k| k.starts_with("headroom_collector_errors_total{"))
    }

    fn age(&self) -> f64 {
        self.values["headroom_exporter_snapshot_age_seconds"]
    }
}

/// Series compared between the baseline and a faulted scrape: values of the GPUs, MIG
/// instances and processes (not counters, timings or exporter health).
fn compared(key: &str) -> bool {
    ["headroom_gpu_", "headroom_mig_", "headroom_process_"]
        .iter()
        .any(|p| key.starts_with(p))
        && !key.contains("_total")
}

fn on_gpu(key: &str, gpu: u32) -> bool {
    key.contains(&format!("gpu=\"{gpu}\""))
}

/// The checks on one faulted scrape, given the clean baseline.
fn check_spared(call: &Call, base: &Scrape, now: &Scrape, what: &str) {
    // Nothing that had a value turns into a fake 0.
    for (k, v) in &base.values {
        if compared(k)
            && *v != 0.0
            && let Some(n) = now.values.get(k)
        {
            assert!(*n != 0.0, "{what}: {k} was {v}, now a fake 0\n{}", now.text);
        }
    }
    // The other GPU's series all stay (calls about no GPU may take everything down).
    let spared = match call.gpu {
        Some(0) => Some(1),
        Some(_) => Some(0),
        None if call.coll == Xid => None,
        None => return,
    };
    for k in base.values.keys().filter(|k| compared(k)) {
        if spared.is_none_or(|g| on_gpu(k, g)) {
            assert!(
                now.values.contains_key(k),
                "{what}: {k} vanished although the fault does not touch it\n{}",
                now.text
            );
        }
    }
    // The other collectors are unaffected.
    for other in [Device, Process, Gpm, Xid] {
        if other != call.coll {
            assert_eq!(
                now.success(other),
                Some(1.0),
                "{what}: collector {} must stay at 1\n{}",
                other.name(),
                now.text
            );
        }
    }
}

/// Polls scrapes until `cond` holds (returning that scrape) or `deadline` (virtual s).
fn poll(run: &Run, deadline: f64, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    loop {
        let s = run.scrape();
        if cond(&s) {
            return s;
        }
        assert!(
            run.t0.elapsed().as_secs_f64() < deadline,
            "{what}: condition not reached in its window; last scrape:\n{}\nstderr: {:#?}",
            s.text,
            run.exporter.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A faulted snapshot shows the failure (or, for "not supported, absent", no failure).
fn expect_fault(run: &Run, call: &Call, error: &str, reason: &str, deadline: f64) {
    let what = format!("{} {error} (gpu {:?})", call.name, call.gpu);
    if error == "NOT_SUPPORTED" && call.ns == Absent {
        // A snapshot taken well inside the window: no failure anywhere, nothing counted.
        let s = poll(run, deadline, &what, |s| s.age() < 0.8);
        assert!(
            !s.any_errors(),
            "{what}: not supported is no failure\n{}",
            s.text
        );
        assert_eq!(s.success(call.coll), Some(1.0), "{what}\n{}", s.text);
        return;
    }
    poll(run, deadline, &what, |s| {
        s.success(call.coll) == Some(0.0) && s.errors(call.coll, reason) > 0.0
    });
}

fn recovers(run: &Run, call: &Call, deadline: f64) -> Scrape {
    poll(run, deadline, &format!("{} recovery", call.name), |s| {
        [Device, Process, Gpm, Xid]
            .iter()
            .all(|c| s.success(*c) == Some(1.0))
            && s.age() < 0.8
    })
}

/// One exporter for a per-cycle call: a clean baseline, then one window per error, then
/// recovery with every series back.
fn cycle_case(i: usize, call: &Call) -> usize {
    let mut faults = String::new();
    for (k, (error, _)) in ERRORS.iter().enumerate() {
        let from = FIRST + WINDOW * k as f64;
        let extra = if *error == "INSUFFICIENT_SIZE" {
            "persistent = true\n"
        } else {
            ""
        };
        faults.push_str(&fault_toml(call, error, from, Some(from + WINDOW), extra));
    }
    let run = start_run(&format!("c{i}"), &faults, &[]);
    // Baseline: every collector at 1 before the first window.
    let base = poll(&run, FIRST - 0.3, &format!("{} baseline", call.name), |s| {
        [Device, Process, Gpm, Xid]
            .iter()
            .all(|c| s.success(*c) == Some(1.0))
            && s.values
                .keys()
                .any(|k| k.starts_with("headroom_xid_errors_total"))
            && s.values
                .keys()
                .any(|k| k.starts_with("headroom_mig_memory_used_bytes"))
    });
    assert!(!base.any_errors(), "baseline has errors:\n{}", base.text);
    let mut checked = 0;
    for (k, (error, reason)) in ERRORS.iter().enumerate() {
        let from = FIRST + WINDOW * k as f64;
        run.sleep_until(from + 0.5);
        // Each window has its own reason, so its counter starts at 0.
        expect_fault(&run, call, error, reason, from + WINDOW - 0.1);
        let s = run.scrape();
        check_spared(call, &base, &s, &format!("{} {error}", call.name));
        checked += 1;
    }
    let end = FIRST + WINDOW * ERRORS.len() as f64;
    run.sleep_until(end + 0.5);
    let after = recovers(&run, call, end + 5.0);
    for k in base.values.keys().filter(|k| compared(k)) {
        assert!(
            after.values.contains_key(k),
            "{}: {k} did not come back after the faults\n{}",
            call.name,
            after.text
        );
    }
    checked
}

/// One exporter per error for a call made once: faulted from the start until `FIRST`.
fn once_case(i: usize, call: &'static Call) -> usize {
    let handles: Vec<_> = ERRORS
        .iter()
        .enumerate()
        .map(|(k, (error, reason))| {
            let until = if call.when == Setup {
                None
            } else {
                Some(FIRST)
            };
            let faults = fault_toml(call, error, 0.0, until, "");
            let tag = format!("o{i}-{k}");
            let (error, reason) = (*error, *reason);
            std::thread::spawn(move || {
                let call = &MATRIX[i];
                let run = start_run(&tag, &faults, &[]);
                expect_fault(&run, call, error, reason, FIRST - 0.2);
                let s = run.scrape();
                for other in [Device, Process, Gpm, Xid] {
                    if other != call.coll {
                        assert_eq!(s.success(other), Some(1.0), "{} {error}", call.name);
                    }
                }
                if call.when == Once {
                    run.sleep_until(FIRST);
                    recovers(&run, call, FIRST + 5.0);
                } else if !(error == "NOT_SUPPORTED" && call.ns == Absent) {
                    // The listener does not retry its setup: still failed, still serving.
                    run.sleep_until(FIRST);
                    let s = run.scrape();
                    assert_eq!(s.success(call.coll), Some(0.0), "{}", s.text);
                    assert_eq!(s.success(Device), Some(1.0), "{}", s.text);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    ERRORS.len()
}

#[test]
fn every_call_fails_with_every_error_and_only_its_collector_shows_it() {
    let started = Instant::now();
    let handles: Vec<_> = MATRIX
        .iter()
        .enumerate()
        .map(|(i, call)| {
            std::thread::spawn(move || match call.when {
                Cycle => cycle_case(i, call),
                Once | Setup => once_case(i, call),
            })
        })
        .collect();
    let mut cases = 0;
    let mut failures = Vec::new();
    for (h, call) in handles.into_iter().zip(MATRIX) {
        match h.join() {
            Ok(n) => cases += n,
            Err(e) => failures.push(format!(
                "{} (gpu {:?}): {}",
                call.name,
                call.gpu,
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(cases, MATRIX.len() * ERRORS.len());
    eprintln!(
        "fault matrix: {} calls × {} errors = {cases} faults injected, {:.1} s",
        MATRIX.len(),
        ERRORS.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Every NVML function the exporter called (as the fake saw it) is in the matrix or listed
/// with a reason, every call name in the backend's source too, and the matrix lists no call
/// the exporter does not make.
#[test]
fn matrix_covers_every_call() {
    let d = dir("calls");
    let log = d.join("calls.log");
    let run = start_run(
        "calls-run",
        "",
        &[("HEADROOM_FAKE_CALL_LOG", log.to_str().unwrap())],
    );
    // A few cycles with Xid events delivered, then a clean shutdown (nvmlShutdown).
    poll(&run, 20.0, "xid events", |s| {
        s.values
            .keys()
            .any(|k| k.starts_with("headroom_xid_errors_total"))
            && s.values["headroom_exporter_collections_total"] >= 3.0
    });
    let pid = run.exporter.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let mut run = run;
    run.exporter.child.wait().unwrap();
    drop(run);
    let called: BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let matrix: BTreeSet<&str> = MATRIX.iter().map(|c| c.name).collect();
    let exempt: BTreeSet<&str> = NOT_IN_MATRIX.iter().map(|(n, _)| *n).collect();
    for name in &called {
        assert!(
            matrix.contains(name.as_str()) || exempt.contains(name.as_str()),
            "the exporter calls {name}, which the fault matrix does not cover"
        );
    }
    for name in &matrix {
        assert!(
            called.contains(*name),
            "the matrix lists {name}, which the exporter never called: {called:?}"
        );
    }
    // The source: every "nvml…" call name the backend and collectors mention.
    let mut in_source = BTreeSet::new();
    for sub in ["core/src/nvml", "core/src/collect"] {
        for entry in std::fs::read_dir(repo_root().join(sub)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for piece in text.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')) {
                if piece.starts_with("nvml")
                    && !piece.ends_with("_t")
                    && !piece.starts_with("nvmlReturn")
                    && piece.len() > 8
                    && piece.as_bytes()[4].is_ascii_uppercase()
                {
                    in_source.insert(piece.to_string());
                }
            }
        }
    }
    let elsewhere: BTreeSet<&str> = NOT_CALLED_BY_EXPORTER.iter().map(|(n, _)| *n).collect();
    for name in &called {
        assert!(
            !elsewhere.contains(name.as_str()),
            "the exporter now calls {name}: add it to the matrix"
        );
    }
    for name in &in_source {
        assert!(
            matrix.contains(name.as_str())
                || exempt.contains(name.as_str())
                || elsewhere.contains(name.as_str()),
            "core/src names {name}, which the fault matrix does not cover"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A failing `nvmlInit_v2` is no half-started exporter: it exits 3 naming the error.
#[test]
fn failing_init_stops_the_exporter_with_a_clear_error() {
    let d = dir("init");
    let scenario = d.join("scenario.toml");
    std::fs::write(
        &scenario,
        scenario_with(
            &fault_toml(&MATRIX[0], "UNKNOWN", 0.0, None, "")
                .replace("nvmlSystemGetDriverVersion", "nvmlInit_v2"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(exporter_bin())
        .args(["--listen", "127.0.0.1:0", "--simulate"])
        .arg(&scenario)
        .arg("--nvml-lib")
        .arg(fake_nvml())
        .env("HEADROOM_FAKE_STATE_DIR", d.join("fake"))
        .env("HEADROOM_KUBELET_SOCKET", "none")
        .env_remove("HEADROOM_FAKE_FREEZE_AT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("failed to initialise"), "{stderr}");
    let _ = std::fs::remove_dir_all(&d);
}

fn scenario_with(faults: &str) -> String {
    scenario(faults)
}

/// A GPU lost mid-run (every call about it → GPU_IS_LOST) and coming back: the device
/// collector fails and its series go, GPU 0's stay; then success 1 and the series return.
#[test]
fn a_gpu_lost_mid_run_comes_back() {
    let faults =
        "\n[[fault]]\ncall = \"*\"\ngpu = 1\nerror = \"GPU_IS_LOST\"\nfrom_s = 3\nuntil_s = 6\n";
    let run = start_run("lost", faults, &[]);
    let base = poll(&run, 2.7, "baseline", |s| {
        s.success(Device) == Some(1.0)
            && s.values
                .keys()
                .any(|k| k.starts_with("headroom_mig_memory_used_bytes"))
    });
    run.sleep_until(3.5);
    let lost = poll(&run, 5.8, "lost", |s| {
        s.success(Device) == Some(0.0) && s.errors(Device, "gpu_lost") > 0.0
    });
    for k in base.values.keys().filter(|k| compared(k)) {
        assert_eq!(
            lost.values.contains_key(k),
            on_gpu(k, 0),
            "{k} while GPU 1 is lost\n{}",
            lost.text
        );
    }
    run.sleep_until(6.2);
    let back = recovers(&run, &MATRIX[0], 10.0);
    for k in base.values.keys().filter(|k| compared(k)) {
        assert!(
            back.values.contains_key(k),
            "{k} did not return\n{}",
            back.text
        );
    }
}

/// An NVML call that hangs 30 s: scrapes keep answering at once from the last snapshot,
/// whose age rises past the hang; SIGTERM still stops the exporter within its drain timeout
/// (5 s) and exit grace (2 s) while the call hangs.
#[test]
fn a_hanging_call_leaves_scrapes_fast_and_shutdown_working() {
    let faults = "\n[[fault]]\ncall = \"nvmlDeviceGetMemoryInfo_v2\"\ngpu = 0\nhang_ms = 30000\nfrom_s = 2\nuntil_s = 3\n";
    let mut run = start_run("hang", faults, &[]);
    run.sleep_until(2.5);
    let mut slowest = Duration::ZERO;
    let mut age = 0.0;
    while run.t0.elapsed() < Duration::from_secs(12) {
        let t = Instant::now();
        let s = run.scrape();
        slowest = slowest.max(t.elapsed());
        age = s.age();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?} during the hang"
    );
    assert!(age > 8.0, "snapshot age {age} did not rise during the hang");
    let pid = run.exporter.child.id().to_string();
    let t = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = run.exporter.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no exit 10 s after SIGTERM during a hang"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(7), "exit took {took:?}");
    eprintln!(
        "hang: slowest scrape {slowest:?}, snapshot age {age:.1} s, exit after SIGTERM {took:?}"
    );
}

/// Resident set of a process, KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn an_xid_storm_is_counted_in_bounded_memory_while_scrapes_go_on() {
    // 10,000 Xid 31 events a second for 10 s on GPU 0, on top of the scenario's Xid 13 trickle.
    const RATE: u64 = 10_000;
    const SECONDS: u64 = 10;
    let faults = format!(
        "\n[[xid_storm]]\ngpu = 0\nfrom_s = 3\nduration_s = {SECONDS}\nrate_per_s = {RATE}\nxid = 31\n"
    );
    let run = start_run("xid-storm", &faults, &[]);
    run.sleep_until(2.5);
    let _ = run.scrape();
    let pid = run.exporter.child.id();
    let before = rss_kib(pid);
    let mut slowest = Duration::ZERO;
    let mut peak = before;
    let key = "headroom_xid_errors_total{gpu=\"0\",gpu_uuid=\"GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\",xid=\"31\"}";
    let mut counted = 0.0;
    let deadline = run.t0 + Duration::from_secs(3 + SECONDS + 20);
    while Instant::now() < deadline {
        let t = Instant::now();
        let s = run.scrape();
        slowest = slowest.max(t.elapsed());
        peak = peak.max(rss_kib(pid));
        counted = s.values.get(key).copied().unwrap_or(0.0);
        if run.t0.elapsed() > Duration::from_secs(3 + SECONDS) && counted >= (RATE * SECONDS) as f64
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every event delivered is counted once (the fake hands each out once).
    assert_eq!(counted, (RATE * SECONDS) as f64, "Xid 31 events counted");
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?} during the storm"
    );
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 8 * 1024,
        "RSS grew {growth} KiB during the storm (from {before} KiB)"
    );
    eprintln!(
        "xid storm: {counted} events counted, slowest scrape {slowest:?}, RSS {before} KiB -> peak {peak} KiB"
    );
}
