//! `headroom-sidecar plan`: which way to share a GPU for a mix of jobs. Enumerates the MIG
//! layouts the placement rules allow (from a built-in table or read from NVML), places the
//! mix with learned or declared peaks (a job fits a slot only if its peak plus margin fits
//! the slot's memory), compares them with MPS on the whole GPU and MPS inside MIG, ranks the
//! options and prints them with the `nvidia-smi` commands of the chosen MIG layout.
//! `--dump-table` / `--check-table` show NVML's MIG table for a GPU and compare it with the
//! built-in one. Predicted makespans come from a [`model::MakespanModel`]: the goodput
//! simulator (`sim_model`); where it cannot say (a workload without a profile) they print as
//! `—` (JSON `null`).

mod assign;
mod check;
mod commands;
mod gpu;
mod layouts;
mod mix;
pub mod model;
mod nvml_table;
mod options;
mod render;
mod sim_model;
mod workloads;

use crate::cli::PlanArgs;
use gpu::GpuSpec;
use headroom_core::mig_profiles::{self, MigTable};
use headroom_core::units::{Bytes, parse_size};
use model::MakespanModel;
use options::{JobSpec, PlanOption};
use std::process::ExitCode;
use workloads::Workload;

/// Exit status when no option runs the mix, or the NVML table differs from the built-in one.
const EXIT_NO_PLAN: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NVML: u8 = 3;

/// Room on top of each job's peak.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Margin {
    Bytes(u64),
    /// A fraction of the peak (`10%` = 0.10).
    Share(f64),
}

impl Margin {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("--margin: {s:?} is not a percentage (e.g. 10%)"))?;
            if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                return Err(format!("--margin: {s:?} must be between 0% and 1000%"));
            }
            return Ok(Margin::Share(v / 100.0));
        }
        parse_size(t)
            .map(Margin::Bytes)
            .map_err(|e| format!("--margin: {e} (a size such as 1GiB, or a share such as 10%)"))
    }

    fn on(self, peak: u64) -> u64 {
        match self {
            Margin::Bytes(b) => peak.saturating_add(b),
            Margin::Share(f) => peak.saturating_add((peak as f64 * f).round() as u64),
        }
    }

    fn text(self) -> String {
        match self {
            Margin::Bytes(b) => Bytes(b).to_string(),
            Margin::Share(f) => format!("{}% of each peak", f * 100.0),
        }
    }
}

/// One workload of the mix as planned.
#[derive(Debug, Clone)]
pub struct MixLine {
    pub workload: Workload,
    pub count: u32,
    pub need_bytes: u64,
}

/// Everything a plan prints.
#[derive(Debug, Clone)]
pub struct Report {
    pub gpu: GpuSpec,
    pub mix: Vec<MixLine>,
    pub margin_text: String,
    pub model_wired: bool,
    pub options: Vec<PlanOption>,
    /// Why no option runs the mix (empty when one does).
    pub problems: Vec<String>,
    /// Table rows to print (0 = all).
    pub top: usize,
}

impl Report {
    /// The best-ranked MIG option that runs the whole mix.
    pub fn chosen_mig(&self) -> Option<&PlanOption> {
        self.options.iter().find(|o| o.feasible && o.kind.is_mig())
    }
}

/// Writes to stdout, quietly stopping when the reader went away (`plan ... | head`).
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("headroom-sidecar: {msg}");
    ExitCode::from(code)
}

/// The plan of `mix` on `gpu` with `model`.
fn plan(
    gpu: GpuSpec,
    mix: Vec<(Workload, u32)>,
    margin: Margin,
    model: &dyn MakespanModel,
    model_wired: bool,
    top: usize,
) -> Report {
    let lines: Vec<MixLine> = mix
        .into_iter()
        .map(|(w, count)| MixLine {
            need_bytes: margin.on(w.peak_bytes),
            workload: w,
            count,
        })
        .collect();
    let all_timed = lines.iter().all(|l| l.workload.duration_s().is_some());
    let workloads: Vec<Workload> = lines.iter().map(|l| l.workload.clone()).collect();
    let mut jobs = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        for _ in 0..l.count {
            jobs.push(JobSpec {
                workload: i,
                need: l.need_bytes,
                work: if all_timed {
                    l.workload.duration_s().unwrap_or(1.0)
                } else {
                    1.0
                },
            });
        }
    }
    let options = options::build(&gpu, &workloads, &jobs, model);
    let problems = if options.iter().any(|o| o.feasible) {
        Vec::new()
    } else {
        fits_nowhere(&gpu, &lines, &options)
    };
    Report {
        gpu,
        mix: lines,
        margin_text: margin.text(),
        model_wired,
        options,
        problems,
        top,
    }
}

/// Why no option runs the mix: each workload that no option can place, against the whole
/// GPU and the largest MIG instance.
fn fits_nowhere(gpu: &GpuSpec, lines: &[MixLine], options: &[PlanOption]) -> Vec<String> {
    let largest = gpu.profiles.iter().max_by_key(|p| p.memory_bytes);
    let mig = largest.map_or(" (the GPU has no MIG profiles)".to_string(), |p| {
        format!(
            " and than the largest MIG instance ({}, {})",
            p.name,
            Bytes(p.memory_bytes)
        )
    });
    let mut out: Vec<String> = lines
        .iter()
        .filter(|l| {
            options
                .iter()
                .all(|o| o.unplaced.contains(&l.workload.name))
        })
        .map(|l| {
            format!(
                "{} needs {} (peak {} + margin {}): more than the whole GPU ({} usable){mig}",
                l.workload.name,
                Bytes(l.need_bytes),
                Bytes(l.workload.peak_bytes),
                Bytes(l.need_bytes.saturating_sub(l.workload.peak_bytes)),
                Bytes(gpu.usable_bytes()),
            )
        })
        .collect();
    if out.is_empty() {
        out.push("no option has a slot for every workload of the mix".into());
    }
    out
}

/// `headroom-sidecar plan`, makespans predicted by the goodput simulator.
pub fn run(a: PlanArgs) -> ExitCode {
    run_with(a, &sim_model::SimModel::default(), true)
}

/// `headroom-sidecar plan` with `model` (`wired`: whether it predicts anything).
pub fn run_with(a: PlanArgs, model: &dyn MakespanModel, wired: bool) -> ExitCode {
    let index: Option<u32> = a.gpu.trim().parse().ok();
    let table_flag = a.dump_table || a.check_table;
    if a.dump_table && a.check_table {
        return fail(
            EXIT_USAGE,
            "--dump-table and --check-table: give one of them",
        );
    }
    if table_flag && index.is_none() {
        return fail(
            EXIT_USAGE,
            format!(
                "--dump-table/--check-table read a GPU through NVML: give --gpu INDEX (e.g. 0), \
                 not the model {:?}",
                a.gpu
            ),
        );
    }
    let named_table: Option<&'static MigTable> = match a.table.as_deref().map(gpu::resolve_model) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return fail(EXIT_USAGE, e.replacen("--gpu", "--table", 1)),
    };
    if a.table.is_some() && index.is_none() {
        return fail(EXIT_USAGE, "--table applies only with --gpu INDEX");
    }
    let builtin = match index {
        Some(_) => None,
        None => match gpu::resolve_model(&a.gpu) {
            Ok(t) => Some(t),
            Err(e) => return fail(EXIT_USAGE, e),
        },
    };
    let margin = match Margin::parse(&a.margin) {
        Ok(m) => m,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let mix = if table_flag {
        Vec::new()
    } else {
        let Some(m) = a.mix.as_deref() else {
            return fail(
                EXIT_USAGE,
                "--mix is required, e.g. --mix ti2v-5b=3,s2v-14b=1",
            );
        };
        match mix::parse(m) {
            Ok(m) => m,
            Err(e) => return fail(EXIT_USAGE, e),
        }
    };

    // The GPU (opening the fake NVML re-executes this process, so this comes before
    // anything is read from stdin).
    let spec = match (index, builtin) {
        (_, Some(t)) => GpuSpec::builtin(t),
        (Some(i), None) => {
            let backend =
                match headroom_core::simulate::open(a.simulate.as_deref(), a.nvml_lib.as_deref()) {
                    Ok(b) => b,
                    Err(e) => return fail(EXIT_NVML, e),
                };
            match backend.device_count() {
                Ok(n) if i >= n => {
                    return fail(
                        EXIT_USAGE,
                        format!("--gpu {i}: NVML reports {n} GPU(s) (indexes from 0)"),
                    );
                }
                _ => {}
            }
            let table = match nvml_table::read(&backend, i) {
                Ok(t) => t,
                Err(e) => return fail(EXIT_NVML, e),
            };
            if a.dump_table {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&table.to_json()).unwrap_or_default()
                ));
                return ExitCode::SUCCESS;
            }
            let matched = named_table.or_else(|| mig_profiles::lookup(&table.name));
            if a.check_table {
                return check_table(&table, matched);
            }
            match table.to_spec(matched) {
                Ok(s) => s,
                Err(e) => return fail(EXIT_NVML, e),
            }
        }
        (None, None) => return fail(EXIT_USAGE, "--gpu: give a GPU model or index"),
    };

    let file_profiles = match a.profiles.as_deref().map(workloads::load_profiles) {
        None => Vec::new(),
        Some(Ok(p)) => p,
        Some(Err(e)) => return fail(EXIT_USAGE, e),
    };
    let resolved = match workloads::resolve(&mix, &file_profiles, a.profiles.as_ref()) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("headroom-sidecar: {e}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let report = plan(spec, resolved, margin, model, wired, a.top);
    if a.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&render::json(&report)).unwrap_or_default()
        ));
    } else if report.problems.is_empty() {
        out(&render::text(&report));
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "headroom-sidecar: no option runs this mix on {}:",
            report.gpu.name
        );
        for p in &report.problems {
            eprintln!("  {p}");
        }
        ExitCode::from(EXIT_NO_PLAN)
    }
}

/// `--check-table`: prints the comparison; exit 0 when NVML agrees with the built-in table.
fn check_table(table: &nvml_table::NvmlTable, builtin: Option<&'static MigTable>) -> ExitCode {
    let Some(b) = builtin else {
        return fail(
            EXIT_USAGE,
            format!(
                "no built-in table matches GPU {} ({:?}); name one with --table ({})",
                table.index,
                table.name,
                gpu::known_models()
            ),
        );
    };
    let driver = table
        .driver
        .as_deref()
        .map(|d| format!(", driver {d}"))
        .unwrap_or_default();
    let mut text = format!(
        "GPU {} ({}{driver}): {} MIG profiles read from NVML, compared with built-in table {}\n",
        table.index,
        table.name,
        table.profiles.len(),
        b.key
    );
    let diffs = check::compare(table, b);
    if diffs.is_empty() {
        text.push_str(
            "agree: profile IDs, names, slices, instances, memory, SMs, engines and placements \
             are identical\n",
        );
        out(&text);
        ExitCode::SUCCESS
    } else {
        text.push_str(&format!("differ in {} places:\n", diffs.len()));
        for d in &diffs {
            text.push_str(&format!("  {d}\n"));
        }
        out(&text);
        ExitCode::from(EXIT_NO_PLAN)
    }
}
