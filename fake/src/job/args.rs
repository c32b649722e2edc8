//! `fake-gpu-job`'s command line and environment: flags, the scenario and state directory,
//! the device chosen by `CUDA_VISIBLE_DEVICES` and the MPS client memory limit.

use super::JobError;
use crate::device::DeviceRef;
use crate::scenario::Scenario;
use headroom_core::mps::PinnedMemLimit;
use std::path::PathBuf;

/// Usage text for `--help`.
pub const USAGE: &str = "\
usage: fake-gpu-job --workload NAME [--overrun FACTOR] [--overrun-from SECONDS] [--name NAME]

Plays an inference process on Headroom's fake GPU: registers with the fake device, follows
the workload's memory profile in virtual time and fails with a CUDA out-of-memory error when
its device or its MPS limit is full.

  --workload NAME    workload profile of the scenario to play (required)
  --overrun FACTOR   multiply the profile's memory by FACTOR (default 1.0)
  --overrun-from S   apply --overrun only from S seconds of the workload on (e.g. a larger
                     final decode than learned); default 0
  --name NAME        process name shown by NVML (default python3)

environment:
  HEADROOM_FAKE_SCENARIO              scenario file (required)
  HEADROOM_FAKE_STATE_DIR             state directory shared with the fake NVML (required)
  CUDA_VISIBLE_DEVICES                GPU uuid, MIG uuid or GPU index (default 0)
  CUDA_MPS_PINNED_DEVICE_MEM_LIMIT    MPS client memory limit, e.g. 16G or 0=16G

exit status: 0 finished, 1 out of memory, 2 bad input or setup error";

/// Parsed flags.
#[derive(Debug, Clone, PartialEq)]
pub struct JobArgs {
    pub workload: String,
    pub overrun: f64,
    /// Workload second from which `overrun` applies.
    pub overrun_from: f64,
    pub name: String,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(JobArgs),
    Help,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, JobError> {
    let mut workload = None;
    let mut overrun = 1.0;
    let mut overrun_from = 0.0;
    let mut name = "python3".to_string();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| JobError::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--workload" => workload = Some(value("--workload")?),
            "--name" => name = value("--name")?,
            "--overrun" => {
                let v = value("--overrun")?;
                overrun = match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && f > 0.0 => f,
                    _ => {
                        return Err(JobError::Usage(format!(
                            "--overrun {v:?} is not a number > 0"
                        )));
                    }
                };
            }
            "--overrun-from" => {
                let v = value("--overrun-from")?;
                overrun_from = match v.parse::<f64>() {
                    Ok(f) if f.is_finite() && f >= 0.0 => f,
                    _ => {
                        return Err(JobError::Usage(format!(
                            "--overrun-from {v:?} is not a number of seconds >= 0"
                        )));
                    }
                };
            }
            other => return Err(JobError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let workload = workload.ok_or_else(|| JobError::Usage("--workload NAME is required".into()))?;
    if name.trim().is_empty() {
        return Err(JobError::Usage("--name must not be empty".into()));
    }
    Ok(Command::Run(JobArgs {
        workload,
        overrun,
        overrun_from,
        name,
    }))
}

/// What the environment says.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnv {
    pub scenario: PathBuf,
    pub state_dir: PathBuf,
    pub visible_devices: Option<String>,
    /// The raw value and the parsed limit.
    pub mps_limit: Option<(String, PinnedMemLimit)>,
}

/// Reads the environment through `get` (`std::env::var` in the binary).
pub fn read_env(get: impl Fn(&str) -> Option<String>) -> Result<JobEnv, JobError> {
    let required = |key: &'static str| {
        get(key)
            .filter(|v| !v.trim().is_empty())
            .ok_or(JobError::MissingEnv { key })
    };
    let scenario = PathBuf::from(required(crate::ENV_SCENARIO)?);
    let state_dir = PathBuf::from(required(crate::ENV_STATE_DIR)?);
    let mps_limit = match get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT") {
        None => None,
        Some(raw) => {
            let parsed = PinnedMemLimit::parse(&raw).map_err(JobError::BadLimit)?;
            Some((raw, parsed))
        }
    };
    Ok(JobEnv {
        scenario,
        state_dir,
        visible_devices: get("CUDA_VISIBLE_DEVICES"),
        mps_limit,
    })
}

/// The device `CUDA_VISIBLE_DEVICES` selects (its first entry: the job's device 0). A GPU
/// in MIG mode, named by index or uuid, means its first MIG instance.
pub fn select_device(s: &Scenario, visible: Option<&str>) -> Result<DeviceRef, JobError> {
    let value = visible.unwrap_or("0");
    let first = value.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return Err(JobError::NoDevice(format!(
            "CUDA_VISIBLE_DEVICES={value:?} makes no CUDA device visible"
        )));
    }
    let device = if first.starts_with("GPU-") || first.starts_with("MIG-") {
        s.device_by_uuid(first).or_else(|| unique_prefix(s, first))
    } else {
        first
            .parse::<usize>()
            .ok()
            .filter(|&i| i < s.gpus.len())
            .map(DeviceRef::Gpu)
    };
    let Some(device) = device else {
        return Err(JobError::NoDevice(format!(
            "CUDA_VISIBLE_DEVICES={value:?} names no device of the scenario (it has {} GPUs)",
            s.gpus.len()
        )));
    };
    match device {
        DeviceRef::Gpu(g) if s.gpu(g).is_some_and(|g| g.mig_mode) => {
            if s.mig(g, 0).is_some() {
                Ok(DeviceRef::Mig { gpu: g, slot: 0 })
            } else {
                Err(JobError::NoDevice(format!(
                    "GPU {g} is in MIG mode and has no MIG instance"
                )))
            }
        }
        d => Ok(d),
    }
}

/// CUDA accepts a unique prefix of a uuid.
fn unique_prefix(s: &Scenario, prefix: &str) -> Option<DeviceRef> {
    let mut found = None;
    for g in &s.gpus {
        let uuids = std::iter::once((g.uuid.as_str(), DeviceRef::Gpu(g.index))).chain(
            g.migs.iter().map(|m| {
                (
                    m.uuid.as_str(),
                    DeviceRef::Mig {
                        gpu: g.index,
                        slot: m.slot,
                    },
                )
            }),
        );
        for (uuid, d) in uuids {
            if uuid.starts_with(prefix) {
                if found.is_some() {
                    return None;
                }
                found = Some(d);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, JobError> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        assert_eq!(
            args(&["--workload", "ti2v-5b", "--overrun=1.3", "--name", "wan"]).unwrap(),
            Command::Run(JobArgs {
                workload: "ti2v-5b".into(),
                overrun: 1.3,
                overrun_from: 0.0,
                name: "wan".into()
            })
        );
        assert_eq!(args(&["--help"]).unwrap(), Command::Help);
        assert!(args(&[]).unwrap_err().to_string().contains("--workload"));
        assert!(
            args(&["--workload"])
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
        assert!(args(&["--workload", "x", "--overrun", "-1"]).is_err());
        assert!(
            args(&["--bogus"])
                .unwrap_err()
                .to_string()
                .contains("--bogus")
        );
    }

    #[test]
    fn environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        };
        let e = read_env(env(&[("HEADROOM_FAKE_STATE_DIR", "/tmp/x")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HEADROOM_FAKE_SCENARIO is not set (the scenario file to play)"
        );
        let e = read_env(env(&[
            ("HEADROOM_FAKE_SCENARIO", "s.toml"),
            ("HEADROOM_FAKE_STATE_DIR", "/tmp/x"),
            ("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=lots"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("0=lots"), "{e}");
        let ok = read_env(env(&[
            ("HEADROOM_FAKE_SCENARIO", "s.toml"),
            ("HEADROOM_FAKE_STATE_DIR", "/tmp/x"),
            ("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "16G"),
        ]))
        .unwrap();
        assert_eq!(ok.mps_limit.unwrap().1.for_device(0), Some(16 << 30));
    }

    #[test]
    fn device_selection() {
        let s = Scenario::from_toml(
            r#"
driver_version = "580.95.05"
[[gpu]]
name = "A"
uuid = "GPU-aaaa"
memory_total = "80GiB"
sm_count = 132
architecture = "hopper"
[[gpu]]
name = "B"
uuid = "GPU-bbbb"
memory_total = "80GiB"
sm_count = 132
architecture = "hopper"
mig_mode = true
mig_profiles = "h100-80gb"
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-cccc"
gpu_instance_id = 1
"#,
            "t",
        )
        .unwrap();
        assert_eq!(select_device(&s, None).unwrap(), DeviceRef::Gpu(0));
        assert_eq!(
            select_device(&s, Some("1,0")).unwrap(),
            DeviceRef::Mig { gpu: 1, slot: 0 }
        );
        assert_eq!(
            select_device(&s, Some("GPU-bb")).unwrap(),
            DeviceRef::Mig { gpu: 1, slot: 0 }
        );
        assert_eq!(
            select_device(&s, Some("MIG-cccc")).unwrap(),
            DeviceRef::Mig { gpu: 1, slot: 0 }
        );
        assert!(select_device(&s, Some("GPU-")).is_err(), "ambiguous prefix");
        assert!(select_device(&s, Some("2")).is_err());
        assert!(select_device(&s, Some("")).is_err());
    }
}
