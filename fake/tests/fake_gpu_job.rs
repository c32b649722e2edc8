//! Runs the real `fake-gpu-job` binary against a small, time-scaled scenario (40 virtual
//! seconds per wall second): a job that finishes, a job over its MPS limit, three TI2V-like
//! jobs that do not fit together, a job in a MIG instance, registry cleanup after a kill, and
//! bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use headroom_fake::StateDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"
driver_version = "580.95.05"

[clock]
time_scale = 40

[contention]
mps_slowdown = [1.0, 1.69, 2.6]

# TI2V-5B's shape in a tenth of the time (ramp, 21.7 GiB steady, 33.2 GiB peak), with a
# longer peak so that start-up jitter of a loaded machine cannot keep the peaks apart.
[[workload]]
name = "ti2v-mini"
timeline = [[0, "0"], [4, "22250MiB"], [14, "22250MiB"], [14.3, "33984MiB"], [24.2, "33984MiB"]]

[[workload]]
name = "short"
timeline = [[0, "0"], [2, "4GiB"], [4, "4GiB"]]

[[workload]]
name = "long"
timeline = [[0, "1GiB"], [4000, "1GiB"]]

[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5"
memory_total = "81559MiB"
memory_reserved = "480MiB"
sm_count = 132
architecture = "hopper"
mps = true

[[gpu.process]]
pid = 4194305
name = "nvidia-cuda-mps-server"
memory = "66MiB"
contends = false

[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-22222222-9d17-0af6-ba0b-82402cce84b5"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mig_mode = true
mig_profiles = "h100-80gb"

[[gpu.mig]]
profile = "1g.10gb"
uuid = "MIG-11111111-1449-5ed6-876a-dd5b483b65ca"
gpu_instance_id = 7
"#;

struct Env {
    dir: PathBuf,
    scenario: PathBuf,
    state: PathBuf,
}

fn setup(tag: &str) -> Env {
    let dir = std::env::temp_dir().join(format!("headroom-job-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let state = dir.join("state");
    Env {
        dir,
        scenario,
        state,
    }
}

impl Env {
    fn job(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fake-gpu-job"));
        c.args(args)
            .env("HEADROOM_FAKE_SCENARIO", &self.scenario)
            .env("HEADROOM_FAKE_STATE_DIR", &self.state)
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
            .env_remove("HEADROOM_FAKE_FREEZE_AT");
        c
    }

    fn registry_is_empty(&self) -> bool {
        StateDir::open(&self.state)
            .unwrap()
            .jobs()
            .unwrap()
            .is_empty()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

#[test]
fn a_job_alone_finishes() {
    let env = setup("alone");
    let started = Instant::now();
    let o = env
        .job(&["--workload", "short", "--name", "wan"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("started workload short on GPU-f0adccc6"),
        "{out}"
    );
    assert!(lines[0].contains("MPS client"), "{out}");
    assert!(lines[1].contains("finished workload short"), "{out}");
    assert!(lines[1].contains("peak 4.00 GiB"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(env.registry_is_empty());
}

#[test]
fn over_its_mps_limit_a_job_fails_alone() {
    let env = setup("limit");
    let o = env
        .job(&["--workload", "ti2v-mini"])
        .env("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=16G")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"),
        "{err}"
    );
    assert!(
        err.contains("GPU 0 has a total capacity of 16.00 GiB"),
        "{err}"
    );
    assert!(
        err.contains("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=16G"),
        "{err}"
    );
    assert!(env.registry_is_empty());
}

#[test]
fn three_ti2v_jobs_started_together_do_not_all_fit() {
    let env = setup("three");
    let started = Instant::now();
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.job(&["--workload", "ti2v-mini"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let all: String = outputs.iter().map(show).collect::<Vec<_>>().join("\n");
    let ooms = outputs
        .iter()
        .filter(|o| o.status.code() == Some(1))
        .count();
    assert!(ooms >= 1, "expected at least one OOM: {codes:?}\n{all}");
    assert!(ooms < 3, "the device holds two of them: {codes:?}\n{all}");
    for o in outputs.iter().filter(|o| o.status.code() == Some(1)) {
        let err = text(&o.stderr);
        assert!(err.contains("CUDA out of memory"), "{err}");
        assert!(
            err.contains("GPU 0 has a total capacity of 79.18 GiB"),
            "{err}"
        );
        assert!(
            err.contains("Process 4194305 has 66.00 MiB memory in use."),
            "{err}"
        );
        assert!(!err.contains("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"), "{err}");
    }
    assert!(
        outputs
            .iter()
            .all(|o| matches!(o.status.code(), Some(0 | 1))),
        "{all}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(env.registry_is_empty());
}

#[test]
fn a_mig_instance_is_its_own_device() {
    let env = setup("mig");
    let o = env
        .job(&["--workload", "ti2v-mini"])
        .env(
            "CUDA_VISIBLE_DEVICES",
            "MIG-11111111-1449-5ed6-876a-dd5b483b65ca",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains("GPU 0 has a total capacity of 9.75 GiB"),
        "{err}"
    );
    assert!(
        text(&o.stdout).contains("MIG 1g.10gb (GI 7, CI 0)"),
        "{}",
        show(&o)
    );
}

#[test]
fn a_killed_job_leaves_the_registry() {
    let env = setup("kill");
    let mut child = env
        .job(&["--workload", "long", "--name", "victim"])
        .env("CUDA_VISIBLE_DEVICES", "0")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let state = StateDir::open(&env.state).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let job = loop {
        if let Some(j) = state.jobs().unwrap().into_iter().next() {
            break j;
        }
        assert!(Instant::now() < deadline, "job never registered");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(job.pid, child.id());
    assert_eq!(job.name, "victim");
    assert_eq!(job.device_uuid, "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5");
    assert!(job.mps);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state.jobs().unwrap().is_empty());
    assert!(
        !Path::new(&env.state)
            .join("procs")
            .join(job.pid.to_string())
            .exists()
    );
}

#[test]
fn bad_input_is_named_with_exit_status_2() {
    let env = setup("bad");
    let o = env.job(&["--workload", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_eq!(
        text(&o.stderr).trim(),
        "fake-gpu-job: unknown workload \"nope\" (the scenario has: ti2v-mini, short, long)"
    );
    let short = ["--workload", "short"];
    // (arguments, an environment override, what stderr must say)
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 6] = [
        (&[], None, "--workload NAME is required"),
        (
            &short,
            Some(("HEADROOM_FAKE_STATE_DIR", "")),
            "HEADROOM_FAKE_STATE_DIR is not set",
        ),
        (
            &short,
            Some(("HEADROOM_FAKE_SCENARIO", "/nonexistent.toml")),
            "cannot read scenario /nonexistent.toml",
        ),
        (
            &short,
            Some(("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "sixteen")),
            "bad CUDA_MPS_PINNED_DEVICE_MEM_LIMIT",
        ),
        (
            &short,
            Some(("CUDA_VISIBLE_DEVICES", "GPU-nothing")),
            "names no device",
        ),
        (
            &short,
            Some(("HEADROOM_FAKE_FREEZE_AT", "5")),
            "virtual time stands still",
        ),
    ];
    for (args, var, expected) in cases {
        let mut c = env.job(args);
        if let Some((k, v)) = var {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = text(&o.stderr);
        assert!(
            err.starts_with("fake-gpu-job: ") && err.contains(expected),
            "{}",
            show(&o)
        );
        assert_eq!(err.lines().count(), 1, "{}", show(&o));
        assert!(o.stdout.is_empty(), "{}", show(&o));
    }
}
