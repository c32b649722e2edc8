//! Validation of `[[gpu]]` tables: the GPU's fields, its MIG instances and their layout, its
//! static processes, and that those processes fit their device at every moment.

use super::raw::{RawGpu, RawMig, RawProcess};
use super::values::{Problems, activity, memory_timeline, series, size};
use super::{Architecture, Gpu, MigInstance, StaticProcess, Telemetry, Workload};
use crate::mig_profiles::{self, MigProfile, TABLES};
use crate::timeline::MemoryTrack;
use headroom_core::units::{Bytes, parse_size};
use std::collections::HashMap;
use toml::Value;

fn claim_uuid(
    uuids: &mut HashMap<String, String>,
    uuid: &str,
    at: &str,
    prefix: &str,
    p: &mut Problems,
) {
    if !uuid.starts_with(prefix) || uuid.len() <= prefix.len() {
        p.add(at, format!("uuid {uuid:?} must start with {prefix:?}"));
    }
    if let Some(first) = uuids.insert(uuid.to_string(), at.to_string()) {
        p.add(at, format!("uuid {uuid} used twice (also {first})"));
    }
}

pub(super) fn gpu(
    index: usize,
    g: &RawGpu,
    workloads: &[Workload],
    uuids: &mut HashMap<String, String>,
    pids: &mut HashMap<u32, String>,
    p: &mut Problems,
) -> Gpu {
    let at = format!("gpu[{index}]");
    if g.name.trim().is_empty() {
        p.add(
            format!("{at}.name"),
            "must not be empty (e.g. \"NVIDIA H100 80GB HBM3\")",
        );
    }
    claim_uuid(uuids, &g.uuid, &at, "GPU-", p);
    let memory_total = size(&g.memory_total, &format!("{at}.memory_total"), p).unwrap_or(0);
    if memory_total == 0 && parse_size(&g.memory_total).is_ok() {
        p.add(format!("{at}.memory_total"), "must be > 0");
    }
    let memory_reserved = g
        .memory_reserved
        .as_deref()
        .and_then(|s| size(s, &format!("{at}.memory_reserved"), p))
        .unwrap_or(0);
    if memory_total > 0 && memory_reserved >= memory_total {
        p.add(
            format!("{at}.memory_reserved"),
            format!(
                "{} must be less than memory_total {}",
                Bytes(memory_reserved),
                Bytes(memory_total)
            ),
        );
    }
    if g.sm_count == 0 {
        p.add(format!("{at}.sm_count"), "must be > 0");
    }
    let architecture = Architecture::parse(&g.architecture).unwrap_or_else(|| {
        p.add(
            format!("{at}.architecture"),
            format!(
                "{:?} is not one of ampere, hopper, blackwell",
                g.architecture
            ),
        );
        Architecture::Hopper
    });
    let telemetry = Telemetry {
        temperature_c: series(
            g.temperature_c.as_ref(),
            &format!("{at}.temperature_c"),
            35.0,
            0.0,
            150.0,
            p,
        ),
        power_w: series(
            g.power_w.as_ref(),
            &format!("{at}.power_w"),
            75.0,
            0.0,
            2000.0,
            p,
        ),
        sm_clock_mhz: series(
            g.sm_clock_mhz.as_ref(),
            &format!("{at}.sm_clock_mhz"),
            1980.0,
            0.0,
            10000.0,
            p,
        ),
        mem_clock_mhz: series(
            g.mem_clock_mhz.as_ref(),
            &format!("{at}.mem_clock_mhz"),
            2619.0,
            0.0,
            20000.0,
            p,
        ),
        utilization_percent: g.utilization_percent.as_ref().map(|v| {
            series(
                Some(v),
                &format!("{at}.utilization_percent"),
                0.0,
                0.0,
                100.0,
                p,
            )
        }),
        memory_utilization_percent: series(
            g.memory_utilization_percent.as_ref(),
            &format!("{at}.memory_utilization_percent"),
            0.0,
            0.0,
            100.0,
            p,
        ),
    };
    let any_activity = g.graphics_active.is_some()
        || g.sm_active.is_some()
        || g.tensor_active.is_some()
        || g.dram_active.is_some();
    let activity = (any_activity || !g.mig_mode).then(|| {
        activity(
            &at,
            g.graphics_active.as_ref(),
            g.sm_active.as_ref(),
            g.tensor_active.as_ref(),
            g.dram_active.as_ref(),
            p,
        )
    });

    let mig_table = g.mig_profiles.as_deref().and_then(|key| {
        let t = mig_profiles::table(key);
        if t.is_none() {
            let known: Vec<&str> = TABLES.iter().map(|t| t.key).collect();
            p.add(
                format!("{at}.mig_profiles"),
                format!("{key:?} is not a built-in table ({})", known.join(", ")),
            );
        }
        t
    });
    if g.mig_mode && mig_table.is_none() && g.mig_profiles.is_none() {
        p.add(
            &at,
            "mig_mode = true needs mig_profiles (e.g. \"h100-80gb\")",
        );
    }
    if !g.mig_mode && !g.migs.is_empty() {
        p.add(&at, "has [[gpu.mig]] instances but mig_mode is false");
    }
    let mut migs: Vec<MigInstance> = g
        .migs
        .iter()
        .enumerate()
        .filter_map(|(slot, m)| mig(&at, slot, m, g, mig_table, uuids, p))
        .collect();
    check_mig_layout(&at, memory_total, mig_table, &mut migs, p);

    let processes = g
        .processes
        .iter()
        .enumerate()
        .filter_map(|(k, proc_)| process(&at, k, proc_, g, &migs, workloads, pids, p))
        .collect();

    Gpu {
        index,
        name: g.name.trim().to_string(),
        uuid: g.uuid.clone(),
        memory_total,
        memory_reserved,
        sm_count: g.sm_count,
        architecture,
        mps: g.mps,
        telemetry,
        activity,
        mig_mode: g.mig_mode,
        mig_table,
        migs,
        processes,
    }
}

fn mig(
    gpu_at: &str,
    slot: usize,
    m: &RawMig,
    g: &RawGpu,
    table: Option<&'static mig_profiles::MigTable>,
    uuids: &mut HashMap<String, String>,
    p: &mut Problems,
) -> Option<MigInstance> {
    let at = format!("{gpu_at}.mig[{slot}]");
    claim_uuid(uuids, &m.uuid, &at, "MIG-", p);
    let slowdown = m.slowdown.unwrap_or(1.0);
    if !slowdown.is_finite() || slowdown < 1.0 {
        p.add(
            format!("{at}.slowdown"),
            format!("{slowdown} must be a number ≥ 1"),
        );
    }
    let activity = activity(
        &at,
        m.graphics_active.as_ref(),
        m.sm_active.as_ref(),
        m.tensor_active.as_ref(),
        m.dram_active.as_ref(),
        p,
    );
    let table = table?;
    let Some(profile) = table.profile(&m.profile) else {
        let known: Vec<&str> = table.profiles.iter().map(|p| p.name).collect();
        p.add(
            format!("{at}.profile"),
            format!(
                "{:?} is not in table {} ({})",
                m.profile,
                table.key,
                known.join(", ")
            ),
        );
        return None;
    };
    Some(MigInstance {
        slot,
        profile,
        uuid: m.uuid.clone(),
        gpu_instance_id: m.gpu_instance_id,
        compute_instance_id: m.compute_instance_id,
        placement_start: 0,
        mps: m.mps.unwrap_or(g.mps),
        slowdown,
        activity,
    })
}

fn check_mig_layout(
    at: &str,
    memory_total: u64,
    table: Option<&'static mig_profiles::MigTable>,
    migs: &mut [MigInstance],
    p: &mut Problems,
) {
    let Some(table) = table else {
        return;
    };
    let mut gi_ids: HashMap<u32, usize> = HashMap::new();
    for m in migs.iter() {
        if let Some(first) = gi_ids.insert(m.gpu_instance_id, m.slot) {
            p.add(
                format!("{at}.mig[{}]", m.slot),
                format!(
                    "gpu_instance_id {} used twice (also {at}.mig[{first}])",
                    m.gpu_instance_id
                ),
            );
        }
    }
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for m in migs.iter() {
        *counts.entry(m.profile.name).or_default() += 1;
    }
    let mut over = false;
    for (name, n) in &counts {
        if let Some(prof) = table.profile(name)
            && *n > prof.instance_count
        {
            over = true;
            p.add(
                at,
                format!(
                    "{n} instances of {name}, table {} allows {}",
                    table.key, prof.instance_count
                ),
            );
        }
    }
    let needed: u64 = migs.iter().map(|m| m.profile.memory_bytes()).sum();
    if memory_total > 0 && needed > memory_total {
        p.add(
            at,
            format!(
                "MIG instances need {} but the GPU has {}",
                Bytes(needed),
                Bytes(memory_total)
            ),
        );
    }
    let profiles: Vec<&MigProfile> = migs.iter().map(|m| m.profile).collect();
    if over {
        return;
    }
    if let Some(starts) = mig_profiles::place(table, &profiles) {
        for (m, start) in migs.iter_mut().zip(starts) {
            m.placement_start = start;
        }
    } else {
        let names: Vec<&str> = profiles.iter().map(|p| p.name).collect();
        p.add(
            at,
            format!(
                "MIG instances {} cannot be placed together ({} memory slices, {} compute slices)",
                names.join(" + "),
                table.memory_slices,
                table.compute_slices
            ),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    gpu_at: &str,
    k: usize,
    r: &RawProcess,
    g: &RawGpu,
    migs: &[MigInstance],
    workloads: &[Workload],
    pids: &mut HashMap<u32, String>,
    p: &mut Problems,
) -> Option<StaticProcess> {
    let at = format!("{gpu_at}.process[{k}]");
    if r.pid == 0 {
        p.add(&at, "pid must be > 0");
    } else if let Some(first) = pids.insert(r.pid, at.clone()) {
        p.add(&at, format!("pid {} used twice (also {first})", r.pid));
    }
    let name = r.name.clone().unwrap_or_else(|| "python3".to_string());
    if name.trim().is_empty() {
        p.add(format!("{at}.name"), "must not be empty");
    }
    let mig = match (&r.mig, g.mig_mode) {
        (Some(uuid), true) => match migs.iter().find(|m| &m.uuid == uuid) {
            Some(m) => Some(m.slot),
            None => {
                p.add(
                    format!("{at}.mig"),
                    format!("{uuid:?} is not a MIG instance of {gpu_at}"),
                );
                None
            }
        },
        (Some(_), false) => {
            p.add(format!("{at}.mig"), format!("{gpu_at} is not in MIG mode"));
            None
        }
        (None, true) => {
            p.add(
                &at,
                format!("{gpu_at} is in MIG mode: set mig to the instance the process runs in"),
            );
            None
        }
        (None, false) => None,
    };
    let device_mps = match mig.and_then(|s| migs.iter().find(|m| m.slot == s)) {
        Some(m) => m.mps,
        None => g.mps,
    };
    if r.mps && !device_mps {
        p.add(
            format!("{at}.mps"),
            "is true but no MPS daemon runs on its device (set mps = true on the GPU or MIG instance)",
        );
    }
    let memory = match (&r.memory, &r.workload) {
        (Some(_), Some(_)) => {
            p.add(&at, "set either memory or workload, not both");
            None
        }
        (None, None) => {
            p.add(&at, "needs memory (a size or a timeline) or workload");
            None
        }
        (Some(Value::String(s)), None) => {
            size(s, &format!("{at}.memory"), p).map(MemoryTrack::Constant)
        }
        (Some(v), None) => {
            memory_timeline(v, &format!("{at}.memory"), p).map(MemoryTrack::Timeline)
        }
        (None, Some(name)) => match workloads.iter().find(|w| &w.name == name) {
            None => {
                p.add(
                    format!("{at}.workload"),
                    format!("no workload named {name:?}"),
                );
                None
            }
            Some(w) => workload_track(&at, r, w, p),
        },
    };
    if r.workload.is_none() && (r.start_s.is_some() || r.repeat_every_s.is_some()) {
        p.add(&at, "start_s and repeat_every_s need workload");
    }
    Some(StaticProcess {
        pid: r.pid,
        name,
        mps: r.mps,
        mig,
        memory: memory?,
        contends: r.contends.unwrap_or(true),
    })
}

fn workload_track(at: &str, r: &RawProcess, w: &Workload, p: &mut Problems) -> Option<MemoryTrack> {
    let start_s = r.start_s.unwrap_or(0.0);
    if !start_s.is_finite() || start_s < 0.0 {
        p.add(
            format!("{at}.start_s"),
            format!("{start_s} must be a number of seconds ≥ 0"),
        );
        return None;
    }
    if let Some(period) = r.repeat_every_s
        && (!period.is_finite() || period < w.duration_s())
    {
        p.add(
            format!("{at}.repeat_every_s"),
            format!(
                "{period} must be at least the workload's duration ({} s for {})",
                w.duration_s(),
                w.name
            ),
        );
        return None;
    }
    Some(MemoryTrack::Workload {
        timeline: w.timeline.clone(),
        start_s,
        repeat_every_s: r.repeat_every_s,
    })
}

/// Static processes must fit their device at every moment.
pub(super) fn check_fit(g: &Gpu, p: &mut Problems) {
    let gpu_at = format!("gpu[{}]", g.index);
    let mut devices: Vec<(String, Option<usize>, u64)> = Vec::new();
    if g.mig_mode {
        for m in &g.migs {
            devices.push((
                format!("{gpu_at}.mig[{}]", m.slot),
                Some(m.slot),
                m.profile.memory_bytes(),
            ));
        }
    } else {
        devices.push((
            gpu_at.clone(),
            None,
            g.memory_total.saturating_sub(g.memory_reserved),
        ));
    }
    for (at, slot, capacity) in devices {
        let procs: Vec<&StaticProcess> = g.processes.iter().filter(|p| p.mig == slot).collect();
        let mut times: Vec<f64> = procs
            .iter()
            .flat_map(|p| p.memory.breakpoints(3600.0))
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        for t in times {
            let used: u64 = procs.iter().filter_map(|p| p.memory.at(t)).sum();
            if used > capacity {
                p.add(
                    at,
                    format!(
                        "static processes use {} at t = {t} s, more than the {} available",
                        Bytes(used),
                        Bytes(capacity)
                    ),
                );
                break;
            }
        }
    }
}
