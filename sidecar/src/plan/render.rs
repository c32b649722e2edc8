//! Printing a plan: the ranked options as a table with the chosen MIG layout's `nvidia-smi`
//! commands, or the same as one JSON object (`--json`).

use super::Report;
use super::options::{Kind, PlanOption, Slot};
use headroom_core::units::Bytes;
use serde_json::{Value, json};
use std::fmt::Write;

/// `—` for an unknown number.
const UNKNOWN: &str = "—";

fn duration(s: Option<f64>) -> String {
    match s {
        None => UNKNOWN.into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) => {
            let t = s.round() as u64;
            format!("{}m{:02}s", t / 60, t % 60)
        }
    }
}

/// `ti2v-5b ×2, s2v-14b` (runs of the same name grouped).
fn jobs(list: &[String]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while let Some(n) = list.get(i) {
        let run = list[i..].iter().take_while(|m| *m == n).count();
        parts.push(if run > 1 {
            format!("{n} ×{run}")
        } else {
            n.clone()
        });
        i += run;
    }
    parts.join(", ")
}

fn slot_label(o: &PlanOption, s: &Slot) -> String {
    let base = match s.instance.and_then(|g| o.instances.get(g)) {
        Some(i) => format!("{}@{}", i.profile, i.start),
        None => "GPU".into(),
    };
    match s.compute_instance_slices {
        Some(c) => format!("{base}/{c}c"),
        None => base,
    }
}

/// What runs where: `3g.40gb@0: ti2v-5b ×2 | 3g.40gb@4: ti2v-5b`.
fn placement(o: &PlanOption) -> String {
    let parts: Vec<String> = o
        .slots
        .iter()
        .filter(|s| !s.jobs.is_empty())
        .map(|s| {
            let at_once = if s.running_at_start > 1 {
                format!(" ({} at once)", s.running_at_start)
            } else {
                String::new()
            };
            format!("{}: {}{at_once}", slot_label(o, s), jobs(&s.jobs))
        })
        .collect();
    parts.join(" | ")
}

fn parallel(o: &PlanOption) -> String {
    match o.peak_concurrency {
        Some(p) => format!("{} (adm. {p})", o.jobs_in_parallel),
        None => o.jobs_in_parallel.to_string(),
    }
}

/// The human-readable plan.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let g = &r.gpu;
    let source = match r.gpu.index() {
        Some(i) => format!("read from NVML, GPU {i}"),
        None => format!(
            "built-in table {}",
            match &g.source {
                super::gpu::GpuSource::Builtin { key } => key.as_str(),
                super::gpu::GpuSource::Nvml { .. } => "",
            }
        ),
    };
    let _ = writeln!(
        s,
        "GPU: {} ({source}): {} usable without MIG, {} compute / {} memory slices",
        g.name,
        Bytes(g.usable_bytes()),
        g.compute_slices,
        g.memory_slices
    );
    let mix: Vec<String> = r
        .mix
        .iter()
        .map(|m| {
            format!(
                "{} × {} (peak {}, {})",
                m.count,
                m.workload.name,
                Bytes(m.workload.peak_bytes),
                match m.workload.source {
                    super::workloads::Source::Inline => "declared",
                    super::workloads::Source::Profiles => "learned",
                    super::workloads::Source::Seed => "seed",
                }
            )
        })
        .collect();
    let _ = writeln!(s, "Mix: {}; margin {}", mix.join(", "), r.margin_text);
    let _ = writeln!(
        s,
        "Makespans: {}",
        if r.model_wired {
            "predicted by the goodput model"
        } else {
            "— (no goodput model wired in yet; nothing is guessed)"
        }
    );
    let _ = writeln!(s);
    let shown: Vec<&PlanOption> = r
        .options
        .iter()
        .filter(|o| o.feasible)
        .take(if r.top == 0 { usize::MAX } else { r.top })
        .collect();
    let _ = writeln!(
        s,
        "{:<4} {:<8} {:<34} {:>12} {:>9} {:>11} {:>9}  WHERE",
        "RANK", "OPTION", "LAYOUT", "PARALLEL", "IDLE C/M", "UNUSED C/M", "MAKESPAN"
    );
    for o in &shown {
        let _ = writeln!(
            s,
            "{:<4} {:<8} {:<34} {:>12} {:>9} {:>11} {:>9}  {}",
            o.rank,
            o.kind.label(),
            o.layout,
            parallel(o),
            format!("{}/{}", o.idle_compute_slices, o.idle_memory_slices),
            format!("{}/{}", o.unused_compute_slices, o.unused_memory_slices),
            duration(o.makespan_s),
            placement(o)
        );
    }
    let feasible = r.options.iter().filter(|o| o.feasible).count();
    if feasible > shown.len() {
        let _ = writeln!(
            s,
            "({} more options; --top 0 shows all)",
            feasible - shown.len()
        );
    }
    let infeasible: Vec<&PlanOption> = r.options.iter().filter(|o| !o.feasible).collect();
    if !infeasible.is_empty() {
        let mut names: Vec<&str> = infeasible
            .iter()
            .flat_map(|o| o.unplaced.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        let _ = writeln!(
            s,
            "({} options not shown: no slot of theirs fits {}; see --json)",
            infeasible.len(),
            names.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "PARALLEL: jobs running at once by peak memory (adm.: peak under MPS admission, from \
         the model). IDLE: compute/memory slices no GPU instance holds. UNUSED: slices of \
         instances this mix never uses."
    );
    if let Some(o) = r.chosen_mig() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Chosen MIG layout: #{} {} {} ({} in parallel; {} compute / {} memory slices idle)",
            o.rank,
            o.kind.label(),
            o.layout,
            o.jobs_in_parallel,
            o.idle_compute_slices,
            o.idle_memory_slices
        );
        if r.gpu.index().is_none() {
            let _ = writeln!(s, "  (add -i INDEX to target one GPU)");
        }
        for c in &o.commands {
            let _ = writeln!(s, "  {c}");
        }
        if o.kind == Kind::MigMps {
            let _ = writeln!(
                s,
                "  then start one MPS daemon per MIG device (CUDA_VISIBLE_DEVICES=MIG-<uuid> \
                 nvidia-cuda-mps-control -d); MIG instances cannot be created while MPS runs"
            );
        }
    } else {
        let _ = writeln!(s);
        let _ = writeln!(s, "No MIG layout runs this mix.");
    }
    s
}

/// The `--json` object.
pub fn json(r: &Report) -> Value {
    let mix: Vec<Value> = r
        .mix
        .iter()
        .map(|m| {
            json!({
                "workload": m.workload.name,
                "count": m.count,
                "peak_bytes": m.workload.peak_bytes,
                "need_bytes": m.need_bytes,
                "source": m.workload.source,
                "duration_s": m.workload.duration_s(),
            })
        })
        .collect();
    let chosen = r.chosen_mig();
    json!({
        "gpu": r.gpu,
        "usable_bytes": r.gpu.usable_bytes(),
        "mix": mix,
        "margin": r.margin_text,
        "model": r.model_wired,
        "feasible": r.options.iter().any(|o| o.feasible),
        "problems": r.problems,
        "options": r.options,
        "chosen_mig_rank": chosen.map(|o| o.rank),
        "commands": chosen.map(|o| o.commands.clone()).unwrap_or_default(),
    })
}
