//! Turns a raw scenario into a [`Scenario`], collecting every problem with its location
//! instead of stopping at the first: the top level, workloads, contention, faults and Xid
//! events here; GPUs in [`super::validate_gpu`]; value forms in [`super::values`].

use super::raw::{RawFault, RawScenario, RawWorkload};
use super::validate_gpu::{check_fit, gpu};
use super::values::{Problems, memory_timeline};
use super::{CudaVersion, Gpu, Problem, Scenario, Workload};
use crate::contention::Contention;
use crate::faults::{DCGM_CALLS, Fault, FaultCall, NVML_CALLS};
use crate::nvml_error;
use crate::xid::{XidEvent, XidSchedule, XidStorm};
use std::collections::HashMap;

pub(super) fn validate(raw: RawScenario) -> Result<Scenario, Vec<Problem>> {
    let mut p = Problems::default();

    if raw.driver_version.trim().is_empty() {
        p.add("driver_version", "must not be empty (e.g. \"580.95.05\")");
    }
    let cuda_version = match raw.cuda_version.as_deref() {
        None => CudaVersion {
            major: 13,
            minor: 0,
        },
        Some(s) => parse_cuda_version(s).unwrap_or_else(|| {
            p.add(
                "cuda_version",
                format!("{s:?} is not MAJOR.MINOR (e.g. \"13.0\")"),
            );
            CudaVersion {
                major: 13,
                minor: 0,
            }
        }),
    };
    let time_scale = raw.clock.and_then(|c| c.time_scale).unwrap_or(1.0);
    if !time_scale.is_finite() || time_scale <= 0.0 {
        p.add(
            "clock.time_scale",
            format!("{time_scale} must be a number > 0"),
        );
    }

    let workloads = workloads(&raw.workloads, &mut p);
    let contention = match raw.contention {
        None => Contention::default(),
        Some(c) => {
            if c.mps_slowdown.is_empty() {
                p.add(
                    "contention.mps_slowdown",
                    "needs at least one factor (1.0 for a job alone)",
                );
            }
            for (i, f) in c.mps_slowdown.iter().enumerate() {
                if !f.is_finite() || *f < 1.0 {
                    p.add(
                        format!("contention.mps_slowdown[{i}]"),
                        format!("{f} must be a number ≥ 1 (jobs never run faster than alone)"),
                    );
                }
            }
            Contention::new(c.mps_slowdown)
        }
    };

    let mut uuids: HashMap<String, String> = HashMap::new();
    let mut pids: HashMap<u32, String> = HashMap::new();
    let gpus: Vec<Gpu> = raw
        .gpus
        .iter()
        .enumerate()
        .map(|(i, g)| gpu(i, g, &workloads, &mut uuids, &mut pids, &mut p))
        .collect();
    for g in &gpus {
        check_fit(g, &mut p);
    }

    let faults: Vec<Fault> = raw
        .faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| fault(i, f, gpus.len(), &mut p))
        .collect();

    let mut xids = XidSchedule::default();
    for (i, x) in raw.xids.iter().enumerate() {
        let at = format!("xid[{i}]");
        check_gpu_index(&at, x.gpu, gpus.len(), &mut p);
        if !x.at_s.is_finite() || x.at_s < 0.0 {
            p.add(
                &at,
                format!("at_s {} must be a number of seconds ≥ 0", x.at_s),
            );
        }
        if x.xid == 0 {
            p.add(&at, "xid must be > 0 (e.g. 79: GPU has fallen off the bus)");
        }
        xids.events.push(XidEvent {
            gpu: x.gpu as usize,
            at_s: x.at_s,
            xid: x.xid,
        });
    }
    for (i, s) in raw.xid_storms.iter().enumerate() {
        let at = format!("xid_storm[{i}]");
        check_gpu_index(&at, s.gpu, gpus.len(), &mut p);
        if !s.from_s.is_finite() || s.from_s < 0.0 {
            p.add(
                &at,
                format!("from_s {} must be a number of seconds ≥ 0", s.from_s),
            );
        }
        if !s.duration_s.is_finite() || s.duration_s <= 0.0 {
            p.add(&at, format!("duration_s {} must be > 0", s.duration_s));
        }
        if !s.rate_per_s.is_finite() || s.rate_per_s <= 0.0 {
            p.add(&at, format!("rate_per_s {} must be > 0", s.rate_per_s));
        }
        if s.xid == 0 {
            p.add(&at, "xid must be > 0");
        }
        let storm = XidStorm {
            gpu: s.gpu as usize,
            from_s: s.from_s,
            duration_s: s.duration_s,
            rate_per_s: s.rate_per_s,
            xid: s.xid,
        };
        if storm.count() > 10_000_000 {
            p.add(
                &at,
                format!("{} events is too many (at most 10000000)", storm.count()),
            );
        }
        xids.storms.push(storm);
    }

    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(Scenario {
        driver_version: raw.driver_version.trim().to_string(),
        cuda_version,
        time_scale,
        gpus,
        workloads,
        contention,
        faults,
        xids,
    })
}

fn parse_cuda_version(s: &str) -> Option<CudaVersion> {
    let (major, minor) = s.trim().split_once('.')?;
    Some(CudaVersion {
        major: major.parse().ok()?,
        minor: minor.parse().ok().filter(|m: &u32| *m < 100)?,
    })
}

fn check_gpu_index(at: &str, gpu: u32, count: usize, p: &mut Problems) -> bool {
    if (gpu as usize) < count {
        return true;
    }
    p.add(
        at,
        format!("gpu {gpu} does not exist (the scenario has {count} GPUs)"),
    );
    false
}

fn workloads(raw: &[RawWorkload], p: &mut Problems) -> Vec<Workload> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let at = format!("workload[{i}]");
        if w.name.trim().is_empty() {
            p.add(&at, "name must not be empty");
        } else if let Some(first) = seen.insert(w.name.as_str(), i) {
            p.add(
                &at,
                format!(
                    "workload name {:?} used twice (also workload[{first}])",
                    w.name
                ),
            );
        }
        let Some(timeline) = memory_timeline(&w.timeline, &format!("{at}.timeline"), p) else {
            continue;
        };
        if timeline.start() != 0.0 {
            p.add(
                format!("{at}.timeline"),
                format!(
                    "must start at 0 s (the job's start), not {} s",
                    timeline.start()
                ),
            );
        } else if timeline.end() <= 0.0 {
            p.add(
                format!("{at}.timeline"),
                "needs a last point after 0 s (its duration)",
            );
        }
        out.push(Workload {
            name: w.name.clone(),
            timeline,
        });
    }
    out
}

fn fault(i: usize, f: &RawFault, gpu_count: usize, p: &mut Problems) -> Option<Fault> {
    let at = format!("fault[{i}]");
    let call = if f.call == "*" {
        FaultCall::Any
    } else {
        if f.call == "nvmlErrorString" {
            p.add(
                format!("{at}.call"),
                "nvmlErrorString cannot fail (it returns a string)",
            );
        } else if !NVML_CALLS.contains(&f.call.as_str()) && !DCGM_CALLS.contains(&f.call.as_str()) {
            p.add(
                format!("{at}.call"),
                format!(
                    "{:?} is not an NVML or DCGM function the fakes export (or \"*\")",
                    f.call
                ),
            );
        }
        FaultCall::Named(f.call.clone())
    };
    if let Some(g) = f.gpu {
        check_gpu_index(&at, g, gpu_count, p);
    }
    let error = match f.error.as_deref() {
        None => None,
        Some(name) => {
            let e = nvml_error::by_name(name);
            if e.is_none() {
                p.add(
                    format!("{at}.error"),
                    format!("{name:?} is not an NVML error name (e.g. NOT_SUPPORTED, GPU_IS_LOST, TIMEOUT)"),
                );
            }
            e
        }
    };
    for (field, v) in [("from_s", f.from_s), ("until_s", f.until_s)] {
        if let Some(v) = v
            && (!v.is_finite() || v < 0.0)
        {
            p.add(
                format!("{at}.{field}"),
                format!("{v} must be a number of seconds ≥ 0"),
            );
        }
    }
    if let (Some(from), Some(until)) = (f.from_s, f.until_s)
        && until <= from
    {
        p.add(
            &at,
            format!("until_s {until} must come after from_s {from}"),
        );
    }
    let hang_ms = f.hang_ms.unwrap_or(0);
    if hang_ms > 600_000 {
        p.add(
            format!("{at}.hang_ms"),
            format!("{hang_ms} is more than 600000 (10 minutes)"),
        );
    }
    if f.error.is_none() && hang_ms == 0 {
        p.add(&at, "needs error or hang_ms (or both)");
    }
    Some(Fault {
        call,
        gpu: f.gpu.map(|g| g as usize),
        error,
        from_s: f.from_s,
        until_s: f.until_s,
        hang_ms,
        persistent: f.persistent.unwrap_or(false),
    })
}
