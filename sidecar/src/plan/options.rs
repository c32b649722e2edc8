//! The options a plan compares, built and ranked: MPS on the whole GPU, and for every maximal
//! MIG layout one job per GPU instance (`mig`), compute-instance splits where a GPU
//! instance's memory holds several jobs (`mig-ci`), and MPS inside the GPU instances
//! (`mig-mps`). Makespans and MPS peak concurrency come from the [`MakespanModel`].

use super::assign::{self, Assignment, Bin, Job};
use super::gpu::GpuSpec;
use super::layouts::{self, Layout};
use super::model::{Estimate, MakespanModel, Slice, SliceMode};
use super::workloads::Workload;
use serde::Serialize;
use std::cmp::Ordering;

/// One job of the mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSpec {
    /// Index into the workload list.
    pub workload: usize,
    /// Peak + margin, bytes.
    pub need: u64,
    /// Solo seconds when every workload has a profile, else 1 (only orders the queues).
    pub work: f64,
}

/// How an option shares the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// MPS on the whole GPU (MIG off), under Headroom's admission.
    Mps,
    /// MIG, one job at a time per GPU instance.
    Mig,
    /// MPS inside each MIG GPU instance.
    MigMps,
    /// MIG GPU instances split into compute instances sharing the instance's memory.
    MigCi,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Mps => "MPS",
            Kind::Mig => "MIG",
            Kind::MigMps => "MIG+MPS",
            Kind::MigCi => "MIG+CI",
        }
    }

    pub fn is_mig(self) -> bool {
        self != Kind::Mps
    }
}

/// A GPU instance of an option.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub profile: String,
    pub profile_id: u32,
    /// Placement start and size, in memory slices.
    pub start: u32,
    pub size: u32,
    pub compute_slices: u32,
    pub memory_bytes: u64,
    pub sm_share: f64,
}

/// Where jobs run: a GPU instance, a compute instance of one, or the whole GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    /// Index into the option's instances (`None`: the whole GPU).
    pub instance: Option<usize>,
    /// Compute slices of the compute instance, when the GPU instance is split.
    pub compute_instance_slices: Option<u32>,
    pub mode: SliceMode,
    pub capacity_bytes: u64,
    pub sm_share: f64,
    /// Jobs in queue order.
    pub jobs: Vec<String>,
    /// How many of `jobs` start at once.
    pub running_at_start: usize,
    pub makespan_s: Option<f64>,
    pub peak_concurrency: Option<u32>,
}

/// One way to run the mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOption {
    /// 1 = best.
    pub rank: usize,
    pub kind: Kind,
    /// `4g.40gb+3g.40gb`, `7g.80gb(4c+3c)`, `whole GPU`.
    pub layout: String,
    pub instances: Vec<Instance>,
    pub slots: Vec<Slot>,
    /// Jobs running at once at the start, by peak memory.
    pub jobs_in_parallel: usize,
    /// Compute / memory slices that no GPU instance of the layout holds (the seeds' "wasted
    /// potential").
    pub idle_compute_slices: u32,
    pub idle_memory_slices: u32,
    /// Compute / memory slices of GPU instances this mix never uses.
    pub unused_compute_slices: u32,
    pub unused_memory_slices: u32,
    /// Whether every job fits some slot.
    pub feasible: bool,
    /// Workloads with jobs no slot fits.
    pub unplaced: Vec<String>,
    /// Predicted time until the last job ends (from the model; `None` = unknown).
    pub makespan_s: Option<f64>,
    /// Most jobs running at once under MPS admission (from the model; sum over instances
    /// for `mig-mps`).
    pub peak_concurrency: Option<u32>,
    /// `nvidia-smi` commands that create the layout (MIG options).
    pub commands: Vec<String>,
}

struct Ctx<'a> {
    spec: &'a GpuSpec,
    workloads: &'a [Workload],
    jobs: &'a [JobSpec],
    model: &'a dyn MakespanModel,
}

fn bin_jobs(jobs: &[JobSpec]) -> Vec<Job> {
    jobs.iter()
        .map(|j| Job {
            need: j.need,
            work: j.work,
        })
        .collect()
}

/// Every option for the mix, ranked best first.
pub fn build(
    spec: &GpuSpec,
    workloads: &[Workload],
    jobs: &[JobSpec],
    model: &dyn MakespanModel,
) -> Vec<PlanOption> {
    let cx = Ctx {
        spec,
        workloads,
        jobs,
        model,
    };
    let js = bin_jobs(jobs);
    let mut out = Vec::new();

    // MPS on the whole GPU.
    let whole = Bin {
        capacity: spec.usable_bytes(),
        speed: 1.0,
    };
    let a = assign::shared(&[whole], &js);
    out.push(cx.finish(
        Kind::Mps,
        "whole GPU".into(),
        Vec::new(),
        vec![(None, None, SliceMode::Mps, whole)],
        &a,
        (0, 0),
    ));

    for layout in layouts::maximal(spec) {
        let instances = cx.instances(&layout);
        let idle = (layout.idle_compute(spec), layout.idle_memory(spec));
        let name = layout.name(spec);
        let bins: Vec<Bin> = instances
            .iter()
            .map(|i| Bin {
                capacity: i.memory_bytes,
                speed: i.sm_share,
            })
            .collect();
        let gi_slots = |mode: SliceMode| -> Vec<(Option<usize>, Option<u32>, SliceMode, Bin)> {
            bins.iter()
                .enumerate()
                .map(|(i, b)| (Some(i), None, mode, *b))
                .collect()
        };

        let a = assign::exclusive(&bins, &js, &[]);
        out.push(cx.finish(
            Kind::Mig,
            name.clone(),
            instances.clone(),
            gi_slots(SliceMode::Exclusive),
            &a,
            idle,
        ));

        let sa = assign::shared(&bins, &js);
        if !sa.first_wave.iter().any(|&n| n >= 2) {
            continue;
        }
        out.push(cx.finish(
            Kind::MigMps,
            name.clone(),
            instances.clone(),
            gi_slots(SliceMode::Mps),
            &sa,
            idle,
        ));
        if let Some(o) = cx.ci_split(&instances, &bins, &sa, idle) {
            out.push(o);
        }
    }
    rank(&mut out);
    out
}

impl Ctx<'_> {
    fn instances(&self, layout: &Layout) -> Vec<Instance> {
        layout
            .members
            .iter()
            .filter_map(|&(p, start)| {
                let p = self.spec.profiles.get(p)?;
                Some(Instance {
                    profile: p.name.clone(),
                    profile_id: p.id,
                    start,
                    size: p.size,
                    compute_slices: p.slices,
                    memory_bytes: p.memory_bytes,
                    sm_share: self.spec.sm_share(p.sm_count),
                })
            })
            .collect()
    }

    /// The compute-instance variant: each GPU instance whose memory holds k ≥ 2 first-wave
    /// jobs is split into k compute instances (at most one per compute slice), each with its
    /// job's need plus an even share of the instance's spare memory; `None` if some job then
    /// fits no compute instance.
    fn ci_split(
        &self,
        instances: &[Instance],
        bins: &[Bin],
        sa: &Assignment,
        idle: (u32, u32),
    ) -> Option<PlanOption> {
        let mut slots = Vec::new();
        let mut preset = Vec::new();
        let mut parts = Vec::new();
        for (g, inst) in instances.iter().enumerate() {
            let wave: Vec<usize> = sa.queues[g]
                .iter()
                .copied()
                .take(sa.first_wave[g])
                .collect();
            let k = wave.len().min(inst.compute_slices as usize);
            if k < 2 {
                slots.push((Some(g), None, SliceMode::Exclusive, bins[g]));
                preset.push(wave.first().copied());
                parts.push(inst.profile.clone());
                continue;
            }
            let sizes = layouts::ci_split(inst.compute_slices, k)?;
            let mut chosen: Vec<usize> = wave[..k].to_vec();
            chosen.sort_by(|&x, &y| {
                self.jobs[y]
                    .work
                    .total_cmp(&self.jobs[x].work)
                    .then(self.jobs[y].need.cmp(&self.jobs[x].need))
            });
            let used: u64 = chosen.iter().map(|&j| self.jobs[j].need).sum();
            let spare = inst.memory_bytes.saturating_sub(used) / k as u64;
            for (&size, &j) in sizes.iter().zip(&chosen) {
                let share = f64::from(size) / f64::from(inst.compute_slices) * inst.sm_share;
                slots.push((
                    Some(g),
                    Some(size),
                    SliceMode::Exclusive,
                    Bin {
                        capacity: self.jobs[j].need + spare,
                        speed: share,
                    },
                ));
                preset.push(Some(j));
            }
            let split: Vec<String> = sizes.iter().map(|s| format!("{s}c")).collect();
            parts.push(format!("{}({})", inst.profile, split.join("+")));
        }
        let ci_bins: Vec<Bin> = slots.iter().map(|s| s.3).collect();
        let a = assign::exclusive(&ci_bins, &bin_jobs(self.jobs), &preset);
        if !a.unplaced.is_empty() {
            return None;
        }
        Some(self.finish(
            Kind::MigCi,
            parts.join("+"),
            instances.to_vec(),
            slots,
            &a,
            idle,
        ))
    }

    fn finish(
        &self,
        kind: Kind,
        layout: String,
        instances: Vec<Instance>,
        slots: Vec<(Option<usize>, Option<u32>, SliceMode, Bin)>,
        a: &Assignment,
        idle: (u32, u32),
    ) -> PlanOption {
        let mut out_slots = Vec::new();
        for (s, (instance, ci, mode, bin)) in slots.into_iter().enumerate() {
            let queue = a.queues.get(s).cloned().unwrap_or_default();
            let ws: Vec<&Workload> = queue
                .iter()
                .filter_map(|&j| self.workloads.get(self.jobs[j].workload))
                .collect();
            let est = if ws.is_empty() {
                Estimate::default()
            } else {
                self.model.estimate(&Slice {
                    capacity_bytes: bin.capacity,
                    sm_share: bin.speed,
                    mode,
                    workloads: &ws,
                })
            };
            out_slots.push(Slot {
                instance,
                compute_instance_slices: ci,
                mode,
                capacity_bytes: bin.capacity,
                sm_share: bin.speed,
                jobs: ws.iter().map(|w| w.name.clone()).collect(),
                running_at_start: a.first_wave.get(s).copied().unwrap_or(0),
                makespan_s: est.makespan_s.filter(|m| m.is_finite() && *m >= 0.0),
                peak_concurrency: est.peak_concurrency,
            });
        }
        let mut unplaced: Vec<String> = a
            .unplaced
            .iter()
            .filter_map(|&j| self.workloads.get(self.jobs[j].workload))
            .map(|w| w.name.clone())
            .collect();
        unplaced.dedup();
        let feasible = unplaced.is_empty();
        let busy: Vec<&Slot> = out_slots.iter().filter(|s| !s.jobs.is_empty()).collect();
        let makespan_s = if feasible && !busy.is_empty() {
            busy.iter()
                .map(|s| s.makespan_s)
                .collect::<Option<Vec<f64>>>()
                .and_then(|v| v.into_iter().reduce(f64::max))
        } else {
            None
        };
        let peak_concurrency = match kind {
            Kind::Mps | Kind::MigMps if feasible && !busy.is_empty() => busy
                .iter()
                .map(|s| s.peak_concurrency)
                .collect::<Option<Vec<u32>>>()
                .map(|v| v.iter().sum()),
            _ => None,
        };
        let (mut unused_c, mut unused_m) = (0, 0);
        for (g, inst) in instances.iter().enumerate() {
            if !out_slots
                .iter()
                .any(|s| s.instance == Some(g) && !s.jobs.is_empty())
            {
                unused_c += inst.compute_slices;
                unused_m += inst.size;
            }
        }
        let mut o = PlanOption {
            rank: 0,
            kind,
            layout,
            instances,
            slots: out_slots,
            jobs_in_parallel: a.parallel(),
            idle_compute_slices: idle.0,
            idle_memory_slices: idle.1,
            unused_compute_slices: unused_c,
            unused_memory_slices: unused_m,
            feasible,
            unplaced,
            makespan_s,
            peak_concurrency,
            commands: Vec::new(),
        };
        o.commands = super::commands::create(self.spec, &o);
        o
    }
}

/// Ranking: options that run the whole mix first; then by predicted makespan where known;
/// then most jobs in parallel; then least compute left idle (by the layout or by this mix),
/// least memory idle; then MPS, MIG, MIG+MPS, MIG+CI; then by name.
fn order(a: &PlanOption, b: &PlanOption) -> Ordering {
    let waste_c = |o: &PlanOption| o.idle_compute_slices + o.unused_compute_slices;
    let waste_m = |o: &PlanOption| o.idle_memory_slices + o.unused_memory_slices;
    b.feasible
        .cmp(&a.feasible)
        .then_with(|| match (a.makespan_s, b.makespan_s) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then(b.jobs_in_parallel.cmp(&a.jobs_in_parallel))
        .then(waste_c(a).cmp(&waste_c(b)))
        .then(waste_m(a).cmp(&waste_m(b)))
        .then(a.kind.cmp(&b.kind))
        .then(a.instances.len().cmp(&b.instances.len()))
        .then(a.layout.cmp(&b.layout))
}

fn rank(options: &mut [PlanOption]) {
    options.sort_by(order);
    for (i, o) in options.iter_mut().enumerate() {
        o.rank = i + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::gpu::resolve_model;
    use crate::plan::model::NoModel;
    use crate::plan::workloads::seeds;

    fn spec(model: &str) -> GpuSpec {
        GpuSpec::builtin(resolve_model(model).unwrap())
    }

    /// `n` jobs of seed workload `name`.
    fn mix(name: &str, n: usize) -> (Vec<Workload>, Vec<JobSpec>) {
        let w = seeds().into_iter().find(|w| w.name == name).unwrap();
        let jobs = (0..n)
            .map(|_| JobSpec {
                workload: 0,
                need: w.peak_bytes,
                work: w.duration_s().unwrap(),
            })
            .collect();
        (vec![w], jobs)
    }

    fn best(options: &[PlanOption], kind: Kind) -> usize {
        options
            .iter()
            .filter(|o| o.kind == kind && o.feasible)
            .map(|o| o.jobs_in_parallel)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn seed_max_videos_in_parallel() {
        // The seeds' "max videos in parallel" table: MPS by peak memory, MIG one per instance.
        for (gpu, name, mps, mig) in [
            ("h100-80gb", "ti2v-5b", 2, 2),
            ("h100-80gb", "s2v-14b", 1, 1),
            ("b200-180gb", "ti2v-5b", 5, 4),
            ("b200-180gb", "s2v-14b", 3, 2),
        ] {
            let (w, jobs) = mix(name, 8);
            let o = build(&spec(gpu), &w, &jobs, &NoModel);
            assert_eq!(best(&o, Kind::Mps), mps, "{gpu} {name} MPS");
            assert_eq!(best(&o, Kind::Mig), mig, "{gpu} {name} MIG");
        }
        // Beyond the seeds: several jobs in one B200 GPU instance (MPS or compute instances).
        let (w, jobs) = mix("s2v-14b", 8);
        let o = build(&spec("b200-180gb"), &w, &jobs, &NoModel);
        assert_eq!(best(&o, Kind::MigMps), 3);
        assert_eq!(best(&o, Kind::MigCi), 3);
    }

    #[test]
    fn s2v_fits_only_the_whole_h100() {
        let (w, jobs) = mix("s2v-14b", 1);
        let o = build(&spec("h100-80gb"), &w, &jobs, &NoModel);
        for opt in o.iter().filter(|o| o.kind == Kind::Mig) {
            let has_7g = opt.instances.iter().any(|i| i.profile == "7g.80gb");
            assert_eq!(opt.feasible, has_7g, "{}", opt.layout);
            if !has_7g {
                assert_eq!(opt.unplaced, vec!["s2v-14b".to_string()]);
            }
        }
        assert!(o.iter().any(|o| o.kind == Kind::Mps && o.feasible));
    }

    #[test]
    fn no_model_no_makespan() {
        let (w, jobs) = mix("ti2v-5b", 3);
        let o = build(&spec("h100-80gb"), &w, &jobs, &NoModel);
        assert!(
            o.iter()
                .all(|o| o.makespan_s.is_none() && o.peak_concurrency.is_none())
        );
        // Ranked by jobs in parallel, then waste: MPS first, then 4g+3g (no slice idle).
        assert_eq!((o[0].kind, o[0].jobs_in_parallel), (Kind::Mps, 2));
        assert_eq!(
            (o[1].kind, o[1].layout.as_str()),
            (Kind::Mig, "4g.40gb+3g.40gb")
        );
        assert_eq!(
            o[1].commands.last().unwrap(),
            "nvidia-smi mig -cgi 5:0,9:4 -C"
        );
        assert!(o.iter().enumerate().all(|(i, o)| o.rank == i + 1));
    }

    #[test]
    fn makespans_come_from_the_model() {
        // A toy model: exclusive slots run their jobs back to back at SM-share speed; MPS
        // slots report nothing for S2V-14B. The option's makespan is its slowest slot's.
        let model = |s: &Slice<'_>| {
            let solo: f64 = s.workloads.iter().filter_map(|w| w.duration_s()).sum();
            match s.mode {
                SliceMode::Exclusive => Estimate {
                    makespan_s: Some(solo / s.sm_share),
                    peak_concurrency: None,
                },
                SliceMode::Mps => Estimate {
                    makespan_s: Some(solo / 1.5),
                    peak_concurrency: Some(s.workloads.len().min(3) as u32),
                },
            }
        };
        let (w, jobs) = mix("ti2v-5b", 3);
        let o = build(&spec("h100-80gb"), &w, &jobs, &model);
        let mig = o
            .iter()
            .find(|o| o.kind == Kind::Mig && o.layout == "4g.40gb+3g.40gb")
            .unwrap();
        let slowest = mig
            .slots
            .iter()
            .filter_map(|s| s.makespan_s)
            .fold(0.0, f64::max);
        assert_eq!(mig.makespan_s, Some(slowest));
        // 4g (64/132 SMs) runs two: 484 s / (64/132) = 998 s.
        assert!((slowest - 484.0 * 132.0 / 64.0).abs() < 1e-6, "{slowest}");
        let mps = o.iter().find(|o| o.kind == Kind::Mps).unwrap();
        assert_eq!(mps.makespan_s, Some(726.0 / 1.5));
        assert_eq!(mps.peak_concurrency, Some(3));
        // Ranked by makespan: MPS (484 s) before every MIG option.
        assert_eq!(o[0].kind, Kind::Mps);
        let known: Vec<f64> = o
            .iter()
            .filter(|o| o.feasible)
            .map(|o| o.makespan_s.unwrap())
            .collect();
        assert!(known.windows(2).all(|w| w[0] <= w[1]), "{known:?}");
    }

    #[test]
    fn ci_split_shares_memory_and_splits_compute() {
        let (w, jobs) = mix("ti2v-5b", 2);
        let o = build(&spec("h100-80gb"), &w, &jobs, &NoModel);
        let ci = o
            .iter()
            .find(|o| o.kind == Kind::MigCi && o.layout == "7g.80gb(4c+3c)")
            .unwrap();
        assert_eq!(ci.jobs_in_parallel, 2);
        let total: u64 = ci.slots.iter().map(|s| s.capacity_bytes).sum();
        assert!(total <= 81152 << 20);
        assert!(ci.slots.iter().all(|s| s.capacity_bytes >= 33984 << 20));
        assert_eq!(
            ci.commands,
            vec![
                "nvidia-smi -mig 1".to_string(),
                "nvidia-smi mig -cgi 0:0".to_string(),
                "nvidia-smi mig -gi <GI ID of the 7g.80gb at 0, see nvidia-smi mig -lgi> -cci 3,2"
                    .to_string(),
            ]
        );
    }
}
