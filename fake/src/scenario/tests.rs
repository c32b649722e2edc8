//! Scenario loading: the happy path, every validation message with its location, and the
//! scenario files shipped in `scenarios/`.

use super::*;
use crate::timeline::MemoryTrack;

const GPU: &str = r#"
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
"#;

fn load(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_toml(text, "test.toml")
}

/// The problems of an invalid scenario, as `at: message` strings.
fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("scenario unexpectedly valid"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = load(&format!("driver_version = \"580.95.05\"\n{GPU}")).unwrap();
    assert_eq!(s.time_scale, 1.0);
    assert_eq!(s.cuda_version.encoded(), 13000);
    let g = &s.gpus[0];
    assert_eq!(g.memory_total, 81559 << 20);
    assert_eq!(g.architecture, Architecture::Hopper);
    assert_eq!(g.telemetry.temperature_c.at(0.0), 35.0);
    assert!(g.activity.is_some());
    assert!(s.faults.is_empty() && s.xids.events.is_empty());
}

#[test]
fn full_scenario_parses() {
    let text = format!(
        r#"
driver_version = "580.95.05"
cuda_version = "12.8"
[clock]
time_scale = 20
[[workload]]
name = "w"
timeline = [[0, "0"], [10, "1GiB"], [20, "2GiB"]]
[contention]
mps_slowdown = [1.0, 1.5]
{GPU}
mps = true
memory_reserved = "480MiB"
temperature_c = [[0, 40], [60, 66]]
graphics_active = 0.9
[[gpu.process]]
pid = 4194305
name = "nvidia-cuda-mps-server"
memory = "66MiB"
contends = false
[[gpu.process]]
pid = 4194306
mps = true
workload = "w"
start_s = 5
repeat_every_s = 30
[[fault]]
call = "nvmlDeviceGetTemperature"
gpu = 0
error = "NOT_SUPPORTED"
[[fault]]
call = "*"
hang_ms = 100
from_s = 1
until_s = 2
[[xid]]
gpu = 0
at_s = 30
xid = 79
[[xid_storm]]
gpu = 0
from_s = 10
duration_s = 2
rate_per_s = 10
xid = 31
"#
    );
    let s = load(&text).unwrap();
    assert_eq!(s.cuda_version.encoded(), 12080);
    assert_eq!(s.time_scale, 20.0);
    assert_eq!(s.contention.factor(2), 1.5);
    let g = &s.gpus[0];
    assert_eq!(g.memory_reserved, 480 << 20);
    assert_eq!(g.telemetry.temperature_c.at(30.0), 53.0);
    assert_eq!(g.processes[0].memory, MemoryTrack::Constant(66 << 20));
    assert!(!g.processes[0].contends);
    assert_eq!(g.processes[1].memory.at(10.0), Some(1 << 29));
    assert_eq!(g.processes[1].memory.at(40.0), Some(1 << 29));
    assert_eq!(s.faults.len(), 2);
    assert_eq!(s.xids.storms[0].count(), 20);
    assert_eq!(s.workload("w").unwrap().duration_s(), 20.0);
}

#[test]
fn toml_errors_name_line_and_column() {
    let ps = problems("driver_version = \"1\"\n[[gpu]]\nnmae = \"x\"\n");
    assert_eq!(ps.len(), 1);
    assert!(
        ps[0].starts_with("line 3, column 1: unknown field `nmae`"),
        "{ps:?}"
    );
    let ps = problems("driver_version = \"1\"\n[clock]\ntime_scale = \"fast\"\n");
    assert!(
        ps[0].starts_with("line 3, column 14: invalid type"),
        "{ps:?}"
    );
}

#[test]
fn reports_every_problem_with_its_location() {
    let text = format!(
        r#"
driver_version = ""
cuda_version = "thirteen"
[clock]
time_scale = 0
[contention]
mps_slowdown = [1.0, 0.5]
[[workload]]
name = "w"
timeline = [[0, "0"], [10, "lots"]]
[[workload]]
name = "w"
timeline = [[5, "1GiB"], [3, "1GiB"]]
{GPU}
memory_total = "80XB"
"#
    )
    .replace("memory_total = \"81559MiB\"\n", "");
    let ps = problems(&text);
    let expected = [
        "driver_version: must not be empty (e.g. \"580.95.05\")",
        "cuda_version: \"thirteen\" is not MAJOR.MINOR (e.g. \"13.0\")",
        "clock.time_scale: 0 must be a number > 0",
        "contention.mps_slowdown[1]: 0.5 must be a number ≥ 1 (jobs never run faster than alone)",
        "workload[0].timeline: point 1: size \"lots\" has no number (expected e.g. 33GiB, 512MiB, 1.5G)",
        "workload[1]: workload name \"w\" used twice (also workload[0])",
        "workload[1].timeline: point 1: time 3 s does not come after the previous point's 5 s",
    ];
    for e in expected {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
    assert!(
        ps.iter()
            .any(|p| p.starts_with("gpu[0].memory_total: size \"80XB\" has an unknown unit")),
        "{ps:#?}"
    );
}

#[test]
fn gpu_field_problems() {
    let bad = GPU
        .replace("\"hopper\"", "\"volta\"")
        .replace(
            "sm_count = 132",
            "sm_count = 0\ntensor_active = 1.5\npower_w = [[0, 100], [\"x\", 3]]",
        )
        .replace("GPU-f0adccc6", "f0adccc6");
    let text = format!(
        "driver_version = \"1\"\n{bad}\nmemory_reserved = \"90GiB\"\nmig_profiles = \"a100\""
    );
    let ps = problems(&text);
    for e in [
        "gpu[0]: uuid \"f0adccc6-9d17-0af6-ba0b-82402cce84b5\" must start with \"GPU-\"",
        "gpu[0].sm_count: must be > 0",
        "gpu[0].architecture: \"volta\" is not one of ampere, hopper, blackwell",
        "gpu[0].tensor_active: values must lie within 0..1",
        "gpu[0].power_w: point 1: time must be a number of seconds",
        "gpu[0].memory_reserved: 90.00 GiB must be less than memory_total 79.65 GiB",
        "gpu[0].mig_profiles: \"a100\" is not a built-in table (h100-80gb, h200-141gb, b200-180gb, a100-40gb, a100-80gb)",
    ] {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
}

#[test]
fn duplicate_pids_and_uuids_are_located() {
    let text = format!(
        r#"driver_version = "1"
{GPU}
[[gpu.process]]
pid = 72221
memory = "1GiB"
{gpu2}
[[gpu.process]]
pid = 1
memory = "1GiB"
[[gpu.process]]
pid = 2
memory = "1GiB"
[[gpu.process]]
pid = 3
memory = "1GiB"
[[gpu.process]]
pid = 72221
memory = "1GiB"
"#,
        gpu2 = GPU
    );
    let ps = problems(&text);
    assert!(
        ps.contains(
            &"gpu[1].process[3]: pid 72221 used twice (also gpu[0].process[0])".to_string()
        ),
        "{ps:#?}"
    );
    assert!(
        ps.contains(
            &"gpu[1]: uuid GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5 used twice (also gpu[0])"
                .to_string()
        ),
        "{ps:#?}"
    );
}

#[test]
fn process_problems() {
    let text = format!(
        r#"driver_version = "1"
[[workload]]
name = "w"
timeline = [[0, "0"], [100, "1GiB"]]
{GPU}
[[gpu.process]]
pid = 10
mps = true
memory = "1GiB"
[[gpu.process]]
pid = 11
[[gpu.process]]
pid = 12
memory = "1GiB"
workload = "w"
[[gpu.process]]
pid = 13
workload = "nope"
[[gpu.process]]
pid = 14
workload = "w"
repeat_every_s = 50
[[gpu.process]]
pid = 15
memory = "1GiB"
start_s = 3
mig = "MIG-x"
[[gpu.process]]
pid = 16
memory = [[0, "70GiB"], [10, "70GiB"]]
[[gpu.process]]
pid = 17
memory = [[5, "10GiB"]]
"#
    );
    let ps = problems(&text);
    for e in [
        "gpu[0].process[0].mps: is true but no MPS daemon runs on its device (set mps = true on the GPU or MIG instance)",
        "gpu[0].process[1]: needs memory (a size or a timeline) or workload",
        "gpu[0].process[2]: set either memory or workload, not both",
        "gpu[0].process[3].workload: no workload named \"nope\"",
        "gpu[0].process[4].repeat_every_s: 50 must be at least the workload's duration (100 s for w)",
        "gpu[0].process[5]: start_s and repeat_every_s need workload",
        "gpu[0].process[5].mig: gpu[0] is not in MIG mode",
        "gpu[0]: static processes use 82.00 GiB at t = 5 s, more than the 79.65 GiB available",
    ] {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
}

const MIG_GPU: &str = r#"
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-1"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mig_mode = true
mig_profiles = "h100-80gb"
"#;

#[test]
fn mig_problems() {
    let text = format!(
        r#"driver_version = "1"
{MIG_GPU}
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-a"
gpu_instance_id = 1
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-b"
gpu_instance_id = 1
[[gpu.mig]]
profile = "1g.10gb"
uuid = "GPU-c"
gpu_instance_id = 3
slowdown = 0.5
[[gpu.mig]]
profile = "5g.50gb"
uuid = "MIG-d"
gpu_instance_id = 4
[[gpu.process]]
pid = 20
memory = "1GiB"
[[gpu.process]]
pid = 21
mig = "MIG-zzz"
memory = "1GiB"
[[gpu.process]]
pid = 22
mig = "MIG-a"
memory = "40GiB"
"#
    );
    let ps = problems(&text);
    for e in [
        "gpu[0].mig[1]: gpu_instance_id 1 used twice (also gpu[0].mig[0])",
        "gpu[0].mig[2]: uuid \"GPU-c\" must start with \"MIG-\"",
        "gpu[0].mig[2].slowdown: 0.5 must be a number ≥ 1",
        "gpu[0].mig[3].profile: \"5g.50gb\" is not in table h100-80gb (1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)",
        "gpu[0]: MIG instances 3g.40gb + 3g.40gb + 1g.10gb cannot be placed together (8 memory slices, 7 compute slices)",
        "gpu[0].process[0]: gpu[0] is in MIG mode: set mig to the instance the process runs in",
        "gpu[0].process[1].mig: \"MIG-zzz\" is not a MIG instance of gpu[0]",
        "gpu[0].mig[0]: static processes use 40.00 GiB at t = 0 s, more than the 39.50 GiB available",
    ] {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
}

#[test]
fn mig_count_and_mode_problems() {
    let three = (1..=3)
        .map(|i| {
            format!(
                "[[gpu.mig]]\nprofile = \"3g.40gb\"\nuuid = \"MIG-{i}\"\ngpu_instance_id = {i}\n"
            )
        })
        .collect::<String>();
    let ps = problems(&format!("driver_version = \"1\"\n{MIG_GPU}\n{three}"));
    assert!(
        ps.contains(&"gpu[0]: 3 instances of 3g.40gb, table h100-80gb allows 2".to_string()),
        "{ps:#?}"
    );
    let off = MIG_GPU.replace("mig_mode = true", "mig_mode = false");
    let ps = problems(&format!(
        "driver_version = \"1\"\n{off}\n[[gpu.mig]]\nprofile = \"7g.80gb\"\nuuid = \"MIG-1\"\ngpu_instance_id = 0\n"
    ));
    assert!(
        ps.contains(&"gpu[0]: has [[gpu.mig]] instances but mig_mode is false".to_string()),
        "{ps:#?}"
    );
    let no_table = MIG_GPU.replace("mig_profiles = \"h100-80gb\"", "");
    let ps = problems(&format!("driver_version = \"1\"\n{no_table}"));
    assert!(
        ps.contains(&"gpu[0]: mig_mode = true needs mig_profiles (e.g. \"h100-80gb\")".to_string()),
        "{ps:#?}"
    );
}

#[test]
fn fault_and_xid_problems() {
    let text = format!(
        r#"driver_version = "1"
{GPU}
[[fault]]
call = "nvmlDeviceGetTemprature"
error = "BROKEN"
gpu = 3
[[fault]]
call = "*"
[[fault]]
call = "nvmlDeviceGetName"
error = "TIMEOUT"
from_s = 10
until_s = 5
hang_ms = 700000
[[xid]]
gpu = 1
at_s = -1
xid = 0
[[xid_storm]]
gpu = 0
from_s = 0
duration_s = 0
rate_per_s = 1e9
xid = 31
"#
    );
    let ps = problems(&text);
    for e in [
        "fault[0].call: \"nvmlDeviceGetTemprature\" is not an NVML or DCGM function the fakes export (or \"*\")",
        "fault[0]: gpu 3 does not exist (the scenario has 1 GPUs)",
        "fault[0].error: \"BROKEN\" is not an NVML error name (e.g. NOT_SUPPORTED, GPU_IS_LOST, TIMEOUT)",
        "fault[1]: needs error or hang_ms (or both)",
        "fault[2]: until_s 5 must come after from_s 10",
        "fault[2].hang_ms: 700000 is more than 600000 (10 minutes)",
        "xid[0]: gpu 1 does not exist (the scenario has 1 GPUs)",
        "xid[0]: at_s -1 must be a number of seconds ≥ 0",
        "xid[0]: xid must be > 0 (e.g. 79: GPU has fallen off the bus)",
        "xid_storm[0]: duration_s 0 must be > 0",
    ] {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
}

#[test]
fn errors_print_on_one_line() {
    let e = load("driver_version = \"\"\n[clock]\ntime_scale = -1\n").unwrap_err();
    let line = e.to_string();
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.starts_with("scenario test.toml: driver_version: must not be empty"),
        "{line}"
    );
    assert!(
        line.contains("; clock.time_scale: -1 must be a number > 0"),
        "{line}"
    );
    let e = Scenario::load(Path::new("/nonexistent/s.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read scenario /nonexistent/s.toml:"),
        "{e}"
    );
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(
        n >= 5,
        "expected the shipped scenarios in {}",
        dir.display()
    );
}

#[test]
fn large_scenario_has_the_asked_shape() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/large.toml");
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s.gpus.len(), 8);
    for g in &s.gpus {
        assert_eq!(g.migs.len(), 7, "gpu {}", g.index);
        let clients = g.processes.iter().filter(|p| p.mps).count();
        assert_eq!(clients, 48, "gpu {}", g.index);
    }
}

#[test]
fn remaining_messages() {
    let small_gpu = MIG_GPU
        .replace("\"81559MiB\"", "\"40GiB\"")
        .replace("name = \"NVIDIA H100 80GB HBM3\"", "name = \" \"");
    let text = format!(
        r#"driver_version = "1"
[contention]
mps_slowdown = []
[[workload]]
name = ""
timeline = [[2, "1GiB"], [4, "2GiB"]]
[[workload]]
name = "zero"
timeline = [[0, "1GiB"]]
[[workload]]
name = "pairs"
timeline = [[0, "0"], [1]]
[[workload]]
name = "w"
timeline = [[0, "0"], [10, "1GiB"]]
{small_gpu}
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-a"
gpu_instance_id = 1
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-b"
gpu_instance_id = 2
[[gpu.process]]
pid = 0
name = ""
mig = "MIG-a"
memory = true
[[gpu.process]]
pid = 5
mig = "MIG-a"
workload = "w"
start_s = -3
[[fault]]
call = "nvmlShutdown"
error = "UNKNOWN"
from_s = -1
[[fault]]
call = "nvmlErrorString"
error = "UNKNOWN"
[[xid_storm]]
gpu = 0
from_s = 0
duration_s = 100000
rate_per_s = 1000
xid = 0
"#
    );
    let ps = problems(&text);
    for e in [
        "contention.mps_slowdown: needs at least one factor (1.0 for a job alone)",
        "workload[0]: name must not be empty",
        "workload[0].timeline: must start at 0 s (the job's start), not 2 s",
        "workload[1].timeline: needs a last point after 0 s (its duration)",
        "workload[2].timeline: point 1: expected [seconds, value]",
        "gpu[0].name: must not be empty (e.g. \"NVIDIA H100 80GB HBM3\")",
        "gpu[0]: MIG instances need 79.00 GiB but the GPU has 40.00 GiB",
        "gpu[0].process[0]: pid must be > 0",
        "gpu[0].process[0].name: must not be empty",
        "gpu[0].process[0].memory: expected a timeline [[seconds, \"size\"], ...]",
        "gpu[0].process[1].start_s: -3 must be a number of seconds ≥ 0",
        "fault[0].from_s: -1 must be a number of seconds ≥ 0",
        "fault[1].call: nvmlErrorString cannot fail (it returns a string)",
        "xid_storm[0]: xid must be > 0",
        "xid_storm[0]: 100000000 events is too many (at most 10000000)",
    ] {
        assert!(ps.iter().any(|p| p == e), "missing {e:?} in {ps:#?}");
    }
    let zero = GPU.replace("\"81559MiB\"", "\"0\"");
    let ps = problems(&format!("driver_version = \"1\"\n{zero}"));
    assert_eq!(ps, vec!["gpu[0].memory_total: must be > 0".to_string()]);
}
