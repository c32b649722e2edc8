//! `--check-table`: does what NVML reports for a GPU agree with the built-in table for its
//! model? Compares every profile (by NVML profile index): ID, name, slices, instance count,
//! memory (exact MiB), SMs, engines and possible placements.

use super::nvml_table::{NvmlTable, ReadProfile};
use headroom_core::mig_profiles::{MigProfile, MigTable};

/// The differences, one line each (empty: they agree).
pub fn compare(read: &NvmlTable, table: &MigTable) -> Vec<String> {
    let mut diffs = Vec::new();
    for b in table.profiles {
        let Some(r) = read.profiles.iter().find(|r| r.info.index == b.index) else {
            diffs.push(format!(
                "{} (index {}, id {}): in the built-in table, not reported by NVML",
                b.name, b.index, b.id
            ));
            continue;
        };
        diffs.extend(profile(b, r));
    }
    for r in &read.profiles {
        if !table.profiles.iter().any(|b| b.index == r.info.index) {
            diffs.push(format!(
                "{} (index {}, id {}, {} MiB, {} SMs): reported by NVML, missing from the \
                 built-in table",
                r.short_name(),
                r.info.index,
                r.info.id,
                r.info.memory_mib,
                r.info.sm_count
            ));
        }
    }
    diffs
}

fn differ(out: &mut Vec<String>, b: &MigProfile, what: &str, built: String, nvml: String) {
    if built != nvml {
        out.push(format!(
            "{} (index {}): {what}: built-in {built}, NVML {nvml}",
            b.name, b.index
        ));
    }
}

fn profile(b: &MigProfile, r: &ReadProfile) -> Vec<String> {
    let i = &r.info;
    let mut d = Vec::new();
    differ(&mut d, b, "profile ID", b.id.to_string(), i.id.to_string());
    if i.name.is_some() {
        differ(&mut d, b, "name", b.name.to_string(), r.short_name());
    }
    differ(
        &mut d,
        b,
        "slices",
        b.slices.to_string(),
        i.slice_count.to_string(),
    );
    differ(
        &mut d,
        b,
        "instances",
        b.instance_count.to_string(),
        i.instance_count.to_string(),
    );
    if i.memory_mib != b.memory_mib {
        let delta = i128::from(i.memory_mib) - i128::from(b.memory_mib);
        differ(
            &mut d,
            b,
            "memory",
            format!("{} MiB", b.memory_mib),
            format!("{} MiB (Δ {delta:+} MiB)", i.memory_mib),
        );
    }
    differ(
        &mut d,
        b,
        "SMs",
        b.sm_count.to_string(),
        i.sm_count.to_string(),
    );
    let engines =
        |ce, dec, enc, jpeg, ofa| format!("CE/DEC/ENC/JPEG/OFA {ce}/{dec}/{enc}/{jpeg}/{ofa}");
    differ(
        &mut d,
        b,
        "engines",
        engines(b.copy_engines, b.decoders, b.encoders, b.jpeg, b.ofa),
        engines(i.copy_engines, i.decoders, i.encoders, i.jpeg, i.ofa),
    );
    let built: Vec<(u32, u32)> = b
        .placement_starts
        .iter()
        .map(|&s| (s, b.placement_size))
        .collect();
    match &r.placements {
        Ok(p) => differ(&mut d, b, "placements", starts(&built), starts(p)),
        Err(e) => d.push(format!(
            "{} (index {}): placements unreadable: {e}",
            b.name, b.index
        )),
    }
    d
}

/// `{0,4}:4` as `nvidia-smi mig -lgipp` prints it (or each `start:size` when sizes differ).
fn starts(p: &[(u32, u32)]) -> String {
    let Some(&(_, size)) = p.first() else {
        return "none".into();
    };
    if p.iter().all(|&(_, s)| s == size) {
        let s: Vec<String> = p.iter().map(|(s, _)| s.to_string()).collect();
        format!("{{{}}}:{size}", s.join(","))
    } else {
        p.iter()
            .map(|(s, z)| format!("{s}:{z}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}
