//! Headroom's own families (the metric contract of DESIGN.md; `docs/metrics.md` lists each
//! with its source call):
//!
//! - `headroom_gpu_info`, `headroom_gpu_memory_{total,reserved,used}_bytes`,
//!   `headroom_gpu_temperature_celsius`, `headroom_gpu_power_watts`,
//!   `headroom_gpu_sm_clock_hertz`, `headroom_gpu_utilization_ratio`,
//!   `headroom_gpu_{graphics,sm,tensor,dram}_active_ratio`
//! - `headroom_mig_memory_{total,used}_bytes`,
//!   `headroom_mig_{graphics,sm,tensor,dram}_active_ratio`
//!
//! Activity comes from GPM or, with the DCGM backend, from DCGM's profiling fields (the
//! help texts name both); `dram` only from DCGM.
//! - `headroom_process_memory_used_bytes`, `headroom_mps_client_memory_limit_bytes`
//! - `headroom_oom_events_total`, `headroom_xid_errors_total`
//! - `headroom_collector_success`, `headroom_collector_duration_seconds`,
//!   `headroom_collector_errors_total`, `headroom_kubelet_success`
//! - `headroom_exporter_build_info`, `headroom_exporter_snapshot_age_seconds`,
//!   `headroom_exporter_collections_total`

use super::family::{Family, Labels, ratio};
use crate::published::Published;
use headroom_core::model::{Gpu, GpuProcess, MigInstance};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;
use std::time::Instant;

fn gpu_labels(g: &Gpu) -> Labels {
    vec![("gpu", g.index.to_string()), ("gpu_uuid", g.uuid.clone())]
}

fn mig_labels(g: &Gpu, m: &MigInstance) -> Labels {
    let mut l = gpu_labels(g);
    l.push(("mig_uuid", m.uuid.clone()));
    if let Some(gi) = m.gpu_instance_id {
        l.push(("gpu_instance_id", gi.to_string()));
    }
    if let Some(ci) = m.compute_instance_id {
        l.push(("compute_instance_id", ci.to_string()));
    }
    if let Some(p) = &m.profile {
        l.push(("mig_profile", p.clone()));
    }
    l
}

fn process_labels(g: &Gpu, p: &GpuProcess) -> Labels {
    let mut l = gpu_labels(g);
    l.push(("pid", p.pid.to_string()));
    if let Some(n) = &p.name {
        l.push(("process", n.clone()));
    }
    l.push(("mps", p.mps.to_string()));
    let optional = [
        ("mig_uuid", &p.mig_uuid),
        ("workload", &p.workload),
        ("container_id", &p.attribution.container_id),
        ("pod_uid", &p.attribution.pod_uid),
        ("pod", &p.attribution.pod),
        ("namespace", &p.attribution.namespace),
        ("container", &p.attribution.container),
    ];
    l.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v))),
    );
    l
}

/// Encodes the Headroom families of `p` that come before the snapshot age (everything but
/// the age and the cycle count); the same bytes serve every scrape of `p`.
pub fn encode_head(
    p: &Published,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let snap = &p.snapshot;

    let mut info = Family::info("headroom_gpu", "GPU identity; value is always 1.");
    let mut mem_total = Family::gauge(
        "headroom_gpu_memory_total",
        "Total framebuffer memory of the GPU.",
        Some(Unit::Bytes),
    );
    let mut mem_reserved = Family::gauge(
        "headroom_gpu_memory_reserved",
        "GPU memory the driver keeps for itself (never available to processes).",
        Some(Unit::Bytes),
    );
    let mut mem_used = Family::gauge(
        "headroom_gpu_memory_used",
        "Framebuffer memory in use on the GPU.",
        Some(Unit::Bytes),
    );
    let mut temp = Family::gauge(
        "headroom_gpu_temperature",
        "GPU die temperature.",
        Some(Unit::Celsius),
    );
    let mut power = Family::gauge(
        "headroom_gpu_power",
        "GPU power draw.",
        Some(Unit::Other("watts".into())),
    );
    let mut clock = Family::gauge(
        "headroom_gpu_sm_clock",
        "SM clock frequency.",
        Some(Unit::Other("hertz".into())),
    );
    let mut util = Family::gauge(
        "headroom_gpu_utilization",
        "Fraction of the last sample period in which a kernel ran (NVML utilization; absent on MIG-enabled GPUs).",
        ratio(),
    );
    let mut gr = Family::gauge(
        "headroom_gpu_graphics_active",
        "Fraction of time the graphics/compute engine was active (GPM, or DCGM GR_ENGINE_ACTIVE).",
        ratio(),
    );
    let mut sm = Family::gauge(
        "headroom_gpu_sm_active",
        "Average fraction of SMs active (GPM, or DCGM SM_ACTIVE).",
        ratio(),
    );
    let mut tensor = Family::gauge(
        "headroom_gpu_tensor_active",
        "Fraction of time any tensor pipe was active (GPM, or DCGM PIPE_TENSOR_ACTIVE).",
        ratio(),
    );
    let mut dram = Family::gauge(
        "headroom_gpu_dram_active",
        "Fraction of cycles the device memory interface was active (DCGM DRAM_ACTIVE; DCGM backend only).",
        ratio(),
    );
    let mut mig_total = Family::gauge(
        "headroom_mig_memory_total",
        "Memory of the MIG instance.",
        Some(Unit::Bytes),
    );
    let mut mig_used = Family::gauge(
        "headroom_mig_memory_used",
        "Memory in use in the MIG instance.",
        Some(Unit::Bytes),
    );
    let mut mig_gr = Family::gauge(
        "headroom_mig_graphics_active",
        "Fraction of time the graphics/compute engine of the MIG GPU instance was active (GPM MIG sample, or DCGM GR_ENGINE_ACTIVE).",
        ratio(),
    );
    let mut mig_sm = Family::gauge(
        "headroom_mig_sm_active",
        "Average fraction of the MIG GPU instance's SMs active (GPM MIG sample, or DCGM SM_ACTIVE).",
        ratio(),
    );
    let mut mig_tensor = Family::gauge(
        "headroom_mig_tensor_active",
        "Fraction of time any tensor pipe of the MIG GPU instance was active (GPM MIG sample, or DCGM PIPE_TENSOR_ACTIVE).",
        ratio(),
    );
    let mut mig_dram = Family::gauge(
        "headroom_mig_dram_active",
        "Fraction of cycles the MIG GPU instance's memory interface was active (DCGM DRAM_ACTIVE; DCGM backend only).",
        ratio(),
    );
    let mut proc_mem = Family::gauge(
        "headroom_process_memory_used",
        "GPU memory used by the process.",
        Some(Unit::Bytes),
    );
    let mut proc_limit = Family::gauge(
        "headroom_mps_client_memory_limit",
        "The MPS client's pinned device memory limit (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT).",
        Some(Unit::Bytes),
    );

    for g in &snap.gpus {
        let gl = gpu_labels(g);
        let mut il = gl.clone();
        if let Some(n) = &g.name {
            il.push(("model", n.clone()));
        }
        if let Some(d) = &snap.driver_version {
            il.push(("driver_version", d.clone()));
        }
        if let Some(m) = g.mig_mode {
            il.push(("mig_mode", if m { "enabled" } else { "disabled" }.into()));
        }
        info.push(il, Some(1u64));
        mem_total.push(gl.clone(), g.memory.map(|m| m.total));
        mem_reserved.push(gl.clone(), g.memory.map(|m| m.reserved));
        mem_used.push(gl.clone(), g.memory.map(|m| m.used));
        temp.push(gl.clone(), g.temperature_celsius);
        power.push(gl.clone(), g.power_watts);
        clock.push(gl.clone(), g.sm_clock_hertz);
        util.push(gl.clone(), g.utilization);
        gr.push(gl.clone(), g.activity.graphics);
        sm.push(gl.clone(), g.activity.sm);
        tensor.push(gl.clone(), g.activity.tensor);
        dram.push(gl, g.activity.dram);
        for m in &g.mig_instances {
            let ml = mig_labels(g, m);
            mig_total.push(ml.clone(), m.memory.map(|x| x.total));
            mig_used.push(ml.clone(), m.memory.map(|x| x.used));
            mig_gr.push(ml.clone(), m.activity.graphics);
            mig_sm.push(ml.clone(), m.activity.sm);
            mig_tensor.push(ml.clone(), m.activity.tensor);
            mig_dram.push(ml, m.activity.dram);
        }
        for pr in &g.processes {
            let pl = process_labels(g, pr);
            proc_mem.push(pl.clone(), pr.used_memory);
            proc_limit.push(pl, pr.mps_memory_limit);
        }
    }

    let mut oom = Family::counter(
        "headroom_oom_events",
        "Out-of-memory exits of GPU processes, by how they were detected (source).",
    );
    for (k, v) in &p.oom_total {
        let mut l = vec![
            ("gpu", k.gpu_index.to_string()),
            ("gpu_uuid", k.gpu_uuid.clone()),
        ];
        if let Some(m) = &k.mig_uuid {
            l.push(("mig_uuid", m.clone()));
        }
        l.push(("workload", k.workload.clone()));
        l.push(("source", k.source.to_string()));
        oom.push(l, Some(*v));
    }
    let mut xid = Family::counter(
        "headroom_xid_errors",
        "Xid critical-error events reported by the driver.",
    );
    for (k, v) in &p.xid_total {
        xid.push(
            vec![
                ("gpu", k.gpu_index.to_string()),
                ("gpu_uuid", k.gpu_uuid.clone()),
                ("xid", k.xid.to_string()),
            ],
            Some(*v),
        );
    }

    let mut success = Family::gauge(
        "headroom_collector_success",
        "Whether the collector's last run made every call it needed (1) or some failed (0).",
        None,
    );
    let mut duration = Family::gauge(
        "headroom_collector_duration",
        "Duration of the collector's last run.",
        Some(Unit::Seconds),
    );
    for c in &p.collectors {
        let l = vec![("collector", c.kind.name().to_string())];
        success.push(l.clone(), Some(u64::from(c.success())));
        duration.push(l, Some(c.duration.as_secs_f64()));
    }
    let mut errors = Family::counter(
        "headroom_collector_errors",
        "Failed NVML calls by collector and reason.",
    );
    for ((kind, reason), n) in &p.errors_total {
        errors.push(
            vec![
                ("collector", kind.name().to_string()),
                ("reason", (*reason).to_string()),
            ],
            Some(*n),
        );
    }

    let mut kubelet = Family::gauge(
        "headroom_kubelet_success",
        "Whether the last kubelet pod-resources List call succeeded (1) or failed (0).",
        None,
    );
    if let Some(ok) = p.kubelet_success {
        kubelet.push(vec![], Some(u64::from(ok)));
    }

    let mut build = Family::info(
        "headroom_exporter_build",
        "Exporter build; value is always 1.",
    );
    build.push(
        vec![("version", env!("CARGO_PKG_VERSION").to_string())],
        Some(1u64),
    );

    for f in [
        &info,
        &mem_total,
        &mem_reserved,
        &mem_used,
        &temp,
        &power,
        &clock,
        &util,
        &gr,
        &sm,
        &tensor,
        &dram,
        &mig_total,
        &mig_used,
        &mig_gr,
        &mig_sm,
        &mig_tensor,
        &mig_dram,
        &proc_mem,
        &proc_limit,
        &oom,
        &xid,
        &success,
        &duration,
        &errors,
        &kubelet,
        &build,
    ] {
        f.encode(encoder)?;
    }
    Ok(())
}

/// `headroom_exporter_snapshot_age_seconds`: the one family that changes between scrapes of
/// the same snapshot.
pub fn encode_age(
    p: &Published,
    now: Instant,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let mut age = Family::gauge(
        "headroom_exporter_snapshot_age",
        "Time since the snapshot being served was collected.",
        Some(Unit::Seconds),
    );
    age.push(
        vec![],
        Some(now.saturating_duration_since(p.at).as_secs_f64()),
    );
    age.encode(encoder)
}

/// The Headroom families after the snapshot age.
pub fn encode_tail(
    p: &Published,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let mut cycles = Family::counter(
        "headroom_exporter_collections",
        "Collection cycles completed.",
    );
    cycles.push(vec![], Some(p.cycles_total));
    cycles.encode(encoder)
}
