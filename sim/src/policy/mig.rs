//! MIG: the GPU split into GPU instances from its real profile table, one job per instance
//! at a time, each instance running at its SM share (per the contention model). Which
//! layout is best depends on the mix, so the benchmark tries every maximal layout and keeps
//! the best with hindsight.

use crate::engine::{Ctx, Policy, Slot, Start};
use crate::scenario::{Contention, Gpu};
use headroom_core::mig_profiles::{self, MigProfile, MigTable};

/// A set of GPU instances that can exist together.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub profiles: Vec<&'static MigProfile>,
}

impl Layout {
    /// `3g.40gb+3g.40gb+1g.10gb`, largest first.
    pub fn name(&self) -> String {
        let names: Vec<&str> = self.profiles.iter().map(|p| p.name).collect();
        names.join("+")
    }

    /// One slot per instance.
    pub fn slots(&self, gpu: &Gpu, contention: &Contention) -> Vec<Slot> {
        self.profiles
            .iter()
            .map(|p| Slot {
                name: p.name.to_string(),
                capacity: p.memory_bytes(),
                speed: contention.mig_speed(f64::from(p.sm_count) / f64::from(gpu.sm_count)),
                unmanaged: 0,
            })
            .collect()
    }
}

/// Every layout to which no further instance can be added. Profiles with media extensions
/// (`+me`) are left out: for compute and memory they equal their plain twin.
pub fn maximal_layouts(table: &'static MigTable) -> Vec<Layout> {
    let mut profiles: Vec<&'static MigProfile> = table
        .profiles
        .iter()
        .filter(|p| !p.name.contains("+me"))
        .collect();
    profiles.sort_by(|a, b| {
        b.slices
            .cmp(&a.slices)
            .then(b.memory_mib.cmp(&a.memory_mib))
    });
    let mut out = Vec::new();
    let mut current = Vec::new();
    grow(table, &profiles, 0, &mut current, &mut out);
    out
}

fn grow(
    table: &MigTable,
    profiles: &[&'static MigProfile],
    from: usize,
    current: &mut Vec<&'static MigProfile>,
    out: &mut Vec<Layout>,
) {
    let mut extended = false;
    for (i, p) in profiles.iter().enumerate().skip(from) {
        current.push(p);
        if mig_profiles::place(table, current).is_some() {
            extended = true;
            grow(table, profiles, i, current, out);
        }
        current.pop();
    }
    if !extended && !current.is_empty() {
        // Maximal only if no profile at all (also earlier ones) can be added.
        let addable = profiles.iter().any(|p| {
            current.push(p);
            let ok = mig_profiles::place(table, current).is_some();
            current.pop();
            ok
        });
        if !addable {
            out.push(Layout {
                profiles: current.clone(),
            });
        }
    }
}

/// One job per instance: each waiting job (in arrival order) takes the smallest free
/// instance its nominal peak fits; a job that fits no instance of the layout never starts.
#[derive(Debug, Default)]
pub struct Mig;

impl Policy for Mig {
    fn decide(&mut self, _now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        let mut busy: Vec<bool> = vec![false; ctx.slots.len()];
        for r in ctx.running {
            if let Some(b) = busy.get_mut(r.slot) {
                *b = true;
            }
        }
        let mut out = Vec::new();
        for &job in ctx.queue {
            let Some(peak) = ctx
                .jobs
                .get(job)
                .and_then(|j| ctx.scenario.workloads.get(j.workload))
                .map(|w| w.peak())
            else {
                continue;
            };
            let best = ctx
                .slots
                .iter()
                .enumerate()
                .filter(|(i, s)| !busy[*i] && s.capacity >= peak)
                .min_by_key(|(_, s)| s.capacity);
            if let Some((slot, _)) = best {
                busy[slot] = true;
                out.push(Start {
                    job,
                    slot,
                    limit: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h100_maximal_layouts_are_placeable_and_maximal() {
        let t = mig_profiles::table("h100-80gb").unwrap();
        let layouts = maximal_layouts(t);
        let names: Vec<String> = layouts.iter().map(Layout::name).collect();
        assert!(names.contains(&"7g.80gb".to_string()), "{names:?}");
        assert!(names.contains(&"3g.40gb+3g.40gb".to_string()), "{names:?}");
        assert!(
            names.contains(&"1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb+1g.10gb".to_string()),
            "{names:?}"
        );
        // 4g.40gb + 3g.40gb is placeable; 4g alone is then not maximal.
        assert!(names.contains(&"4g.40gb+3g.40gb".to_string()), "{names:?}");
        assert!(!names.contains(&"4g.40gb".to_string()), "{names:?}");
        for l in &layouts {
            assert!(
                mig_profiles::place(t, &l.profiles).is_some(),
                "{}",
                l.name()
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicates in {names:?}");
    }
}
