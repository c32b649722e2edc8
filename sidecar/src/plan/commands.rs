//! The `nvidia-smi` commands that create an option's MIG layout: GPU instances with explicit
//! placements (`-cgi ID:START`, so the driver cannot pick a placement that leaves no room for
//! the rest), each with its default compute instance (`-C`), or split into compute instances
//! (`-cci`). MIG mode must be on and no MPS daemon running (the seeds: "MIG instances cannot
//! be created if MPS is already enabled").

use super::gpu::GpuSpec;
use super::layouts::ci_profile_id;
use super::options::{Kind, PlanOption};

/// The commands for a MIG option (empty for MPS on the whole GPU).
pub fn create(spec: &GpuSpec, o: &PlanOption) -> Vec<String> {
    if !o.kind.is_mig() {
        return Vec::new();
    }
    let i = spec.index().map(|i| format!(" -i {i}")).unwrap_or_default();
    let mut order: Vec<usize> = (0..o.instances.len()).collect();
    order.sort_by_key(|&g| o.instances[g].start);
    let cgi = |gs: &[usize]| -> String {
        gs.iter()
            .map(|&g| format!("{}:{}", o.instances[g].profile_id, o.instances[g].start))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = vec![format!("nvidia-smi{i} -mig 1")];
    // Compute-instance sizes of split GPU instances.
    let split: Vec<(usize, Vec<u32>)> = if o.kind == Kind::MigCi {
        order
            .iter()
            .filter_map(|&g| {
                let sizes: Vec<u32> = o
                    .slots
                    .iter()
                    .filter(|s| s.instance == Some(g))
                    .filter_map(|s| s.compute_instance_slices)
                    .collect();
                (!sizes.is_empty()).then_some((g, sizes))
            })
            .collect()
    } else {
        Vec::new()
    };
    let whole: Vec<usize> = order
        .iter()
        .copied()
        .filter(|g| !split.iter().any(|(s, _)| s == g))
        .collect();
    if !whole.is_empty() {
        out.push(format!("nvidia-smi mig{i} -cgi {} -C", cgi(&whole)));
    }
    for (g, sizes) in &split {
        let inst = &o.instances[*g];
        out.push(format!("nvidia-smi mig{i} -cgi {}", cgi(&[*g])));
        let ids: Vec<String> = sizes
            .iter()
            .filter_map(|&s| ci_profile_id(s).map(|id| id.to_string()))
            .collect();
        out.push(format!(
            "nvidia-smi mig{i} -gi <GI ID of the {} at {}, see nvidia-smi mig -lgi> -cci {}",
            inst.profile,
            inst.start,
            ids.join(",")
        ));
    }
    out
}
