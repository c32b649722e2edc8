//! `--compat dcgm`: the dcgm-exporter names, labels and units for the fields existing
//! dashboards use, so they keep working after a switch to Headroom.
//!
//! Families (all gauges, dcgm-exporter's units): `DCGM_FI_DEV_FB_USED` and
//! `DCGM_FI_DEV_FB_FREE` (MiB), `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, `DCGM_FI_PROF_SM_ACTIVE`,
//! `DCGM_FI_PROF_PIPE_TENSOR_ACTIVE` and `DCGM_FI_PROF_DRAM_ACTIVE` (ratio; DRAM only with the
//! DCGM backend), `DCGM_FI_DEV_GPU_TEMP` (°C),
//! `DCGM_FI_DEV_POWER_USAGE` (W), `DCGM_FI_DEV_SM_CLOCK` (MHz), `DCGM_FI_DEV_GPU_UTIL` (%).
//! Labels: `gpu`, `UUID`, `device` (`nvidia<N>`), `modelName`, `Hostname`, and on MIG-enabled
//! GPUs the memory and profiling fields are per GPU instance with `GPU_I_PROFILE`, `GPU_I_ID`,
//! as dcgm-exporter reports them.

use super::family::{Family, Labels};
use headroom_core::model::{Gpu, MigInstance, Snapshot};
use prometheus_client::encoding::DescriptorEncoder;

const MIB: f64 = 1024.0 * 1024.0;

fn labels(g: &Gpu, hostname: Option<&str>) -> Labels {
    let mut l = vec![
        ("gpu", g.index.to_string()),
        ("UUID", g.uuid.clone()),
        ("device", format!("nvidia{}", g.index)),
    ];
    if let Some(n) = &g.name {
        l.push(("modelName", n.clone()));
    }
    if let Some(h) = hostname {
        l.push(("Hostname", h.to_string()));
    }
    l
}

fn mig_labels(g: &Gpu, m: &MigInstance, hostname: Option<&str>) -> Labels {
    let mut l = labels(g, hostname);
    if let Some(p) = &m.profile {
        l.push(("GPU_I_PROFILE", p.clone()));
    }
    if let Some(gi) = m.gpu_instance_id {
        l.push(("GPU_I_ID", gi.to_string()));
    }
    l
}

/// Encodes the dcgm-exporter compatible families.
pub fn encode(
    snap: &Snapshot,
    hostname: Option<&str>,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let mut used = Family::gauge(
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        None,
    );
    let mut free = Family::gauge(
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        None,
    );
    let mut gr = Family::gauge(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "Ratio of time the graphics engine is active.",
        None,
    );
    let mut sm = Family::gauge(
        "DCGM_FI_PROF_SM_ACTIVE",
        "The ratio of cycles an SM has at least 1 warp assigned.",
        None,
    );
    let mut tensor = Family::gauge(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        None,
    );
    let mut dram = Family::gauge(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        None,
    );
    let mut temp = Family::gauge("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", None);
    let mut power = Family::gauge("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", None);
    let mut clock = Family::gauge("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", None);
    let mut util = Family::gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", None);
    for g in &snap.gpus {
        let l = labels(g, hostname);
        temp.push(l.clone(), g.temperature_celsius);
        power.push(l.clone(), g.power_watts);
        clock.push(l.clone(), g.sm_clock_hertz.map(|h| h / 1e6));
        util.push(l.clone(), g.utilization.map(|u| u * 100.0));
        if g.mig_mode == Some(true) {
            // One series per GPU instance (compute instances of one GI share its memory).
            let mut seen = Vec::new();
            for m in &g.mig_instances {
                if m.gpu_instance_id.is_some() && seen.contains(&m.gpu_instance_id) {
                    continue;
                }
                seen.push(m.gpu_instance_id);
                let ml = mig_labels(g, m, hostname);
                used.push(ml.clone(), m.memory.map(|x| x.used as f64 / MIB));
                free.push(ml.clone(), m.memory.map(|x| x.free() as f64 / MIB));
                gr.push(ml.clone(), m.activity.graphics);
                sm.push(ml.clone(), m.activity.sm);
                tensor.push(ml.clone(), m.activity.tensor);
                dram.push(ml, m.activity.dram);
            }
        } else {
            used.push(l.clone(), g.memory.map(|x| x.used as f64 / MIB));
            free.push(l.clone(), g.memory.map(|x| x.free() as f64 / MIB));
            gr.push(l.clone(), g.activity.graphics);
            sm.push(l.clone(), g.activity.sm);
            tensor.push(l.clone(), g.activity.tensor);
            dram.push(l, g.activity.dram);
        }
    }
    for f in [
        &used, &free, &gr, &sm, &tensor, &dram, &temp, &power, &clock, &util,
    ] {
        f.encode(encoder)?;
    }
    Ok(())
}
