//! Which sets of GPU instances the placement rules allow at the same time (maximal layouts:
//! no further instance fits), and how one GPU instance splits into compute instances.

use super::gpu::GpuSpec;
use headroom_core::mig_profiles::place_slots;

/// A set of GPU instances that can exist together: `(profile index in the spec, start)`,
/// largest profiles first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub members: Vec<(usize, u32)>,
}

impl Layout {
    /// `3g.40gb+2×2g.20gb`.
    pub fn name(&self, spec: &GpuSpec) -> String {
        let names: Vec<&str> = self
            .members
            .iter()
            .filter_map(|&(p, _)| spec.profiles.get(p).map(|p| p.name.as_str()))
            .collect();
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while let Some(&n) = names.get(i) {
            let run = names[i..].iter().take_while(|&&m| m == n).count();
            parts.push(if run > 1 {
                format!("{run}×{n}")
            } else {
                n.to_string()
            });
            i += run;
        }
        parts.join("+")
    }

    /// Compute slices no instance holds.
    pub fn idle_compute(&self, spec: &GpuSpec) -> u32 {
        let used: u32 = self
            .members
            .iter()
            .filter_map(|&(p, _)| spec.profiles.get(p).map(|p| p.slices))
            .sum();
        spec.compute_slices.saturating_sub(used)
    }

    /// Memory slices no instance covers.
    pub fn idle_memory(&self, spec: &GpuSpec) -> u32 {
        let used: u32 = self
            .members
            .iter()
            .filter_map(|&(p, _)| spec.profiles.get(p).map(|p| p.size))
            .sum();
        spec.memory_slices.saturating_sub(used)
    }
}

/// The profiles layouts are built from, largest first: media-extension twins (same slices,
/// memory and placements, fewer instances, e.g. `1g.10gb+me`) are left out, since for compute
/// and memory they equal the plain profile.
fn candidates(spec: &GpuSpec) -> Vec<usize> {
    let mut keep: Vec<usize> = Vec::new();
    for (i, p) in spec.profiles.iter().enumerate() {
        if p.starts.is_empty() || p.size == 0 || p.slices == 0 {
            continue;
        }
        let twin = keep.iter().position(|&k| {
            spec.profiles.get(k).is_some_and(|q| {
                q.slices == p.slices
                    && q.memory_bytes == p.memory_bytes
                    && q.size == p.size
                    && q.starts == p.starts
            })
        });
        match twin {
            None => keep.push(i),
            Some(t) => {
                let better = spec.profiles.get(keep[t]).is_some_and(|q| {
                    (p.instance_count, std::cmp::Reverse(p.name.len()))
                        > (q.instance_count, std::cmp::Reverse(q.name.len()))
                });
                if better {
                    keep[t] = i;
                }
            }
        }
    }
    keep.sort_by(|&a, &b| {
        let (pa, pb) = (&spec.profiles[a], &spec.profiles[b]);
        pb.slices
            .cmp(&pa.slices)
            .then(pb.memory_bytes.cmp(&pa.memory_bytes))
            .then(pa.id.cmp(&pb.id))
    });
    keep
}

/// Starts for the instances `set` (profile indexes), or `None` if they cannot coexist:
/// compute slices, instance counts and memory-slice placements.
pub fn fit(spec: &GpuSpec, set: &[usize]) -> Option<Vec<u32>> {
    let mut compute = 0u32;
    let mut items: Vec<(&[u32], u32)> = Vec::with_capacity(set.len());
    for (n, &i) in set.iter().enumerate() {
        let p = spec.profiles.get(i)?;
        compute += p.slices;
        let same = set[..=n].iter().filter(|&&j| j == i).count();
        if same > p.instance_count as usize {
            return None;
        }
        items.push((p.starts.as_slice(), p.size));
    }
    if compute > spec.compute_slices {
        return None;
    }
    place_slots(spec.memory_slices, &items)
}

/// Every maximal layout of the GPU (one per multiset of profiles).
pub fn maximal(spec: &GpuSpec) -> Vec<Layout> {
    let cands = candidates(spec);
    let mut out = Vec::new();
    let mut current = Vec::new();
    grow(spec, &cands, 0, &mut current, &mut out);
    out
}

fn grow(
    spec: &GpuSpec,
    cands: &[usize],
    from: usize,
    current: &mut Vec<usize>,
    out: &mut Vec<Layout>,
) {
    let mut extended = false;
    for (i, &p) in cands.iter().enumerate().skip(from) {
        current.push(p);
        if fit(spec, current).is_some() {
            extended = true;
            grow(spec, cands, i, current, out);
        }
        current.pop();
    }
    if extended || current.is_empty() {
        return;
    }
    // Maximal only if no profile at all (also an earlier one) can be added.
    let addable = cands.iter().any(|&p| {
        current.push(p);
        let ok = fit(spec, current).is_some();
        current.pop();
        ok
    });
    if addable {
        return;
    }
    if let Some(starts) = fit(spec, current) {
        out.push(Layout {
            members: current.iter().copied().zip(starts).collect(),
        });
    }
}

/// Compute-instance sizes and starts allowed inside a GPU instance of `slices` compute
/// slices (NVIDIA's compute-instance profiles: 1c anywhere, 2c at even slices, 3c at 0 and 4
/// of a 7-slice instance, 4c at 0, the full instance at 0).
fn ci_shapes(slices: u32) -> Vec<(u32, Vec<u32>)> {
    let mut v = vec![(1, (0..slices).collect())];
    if slices >= 2 {
        v.push((
            2,
            (0..slices).step_by(2).filter(|s| s + 2 <= slices).collect(),
        ));
    }
    if slices >= 7 {
        v.push((3, vec![0, 4]));
    }
    if slices >= 4 {
        v.push((4, vec![0]));
    }
    if !v.iter().any(|(s, _)| *s == slices) {
        v.push((slices, vec![0]));
    }
    v
}

/// Sizes (in compute slices) of `k` compute instances that split a GPU instance of `slices`
/// compute slices: of the splits the placement rules allow, the one using the most slices,
/// then the most even (largest smallest instance, then smallest largest). `None` if `k`
/// exceeds the slices.
pub fn ci_split(slices: u32, k: usize) -> Option<Vec<u32>> {
    if k == 0 || k > slices as usize {
        return None;
    }
    let shapes = ci_shapes(slices);
    let mut best: Option<(Score, Vec<u32>)> = None;
    let mut sizes = Vec::with_capacity(k);
    choose(&shapes, 0, k, slices, &mut sizes, &mut best);
    best.map(|(_, s)| s)
}

/// (slices used, smallest instance, −largest instance): larger is better.
type Score = (u32, u32, std::cmp::Reverse<u32>);

fn choose(
    shapes: &[(u32, Vec<u32>)],
    from: usize,
    k: usize,
    slices: u32,
    sizes: &mut Vec<u32>,
    best: &mut Option<(Score, Vec<u32>)>,
) {
    if sizes.len() == k {
        let total: u32 = sizes.iter().sum();
        if total > slices {
            return;
        }
        let items: Vec<(&[u32], u32)> = sizes
            .iter()
            .filter_map(|s| shapes.iter().find(|(z, _)| z == s))
            .map(|(z, starts)| (starts.as_slice(), *z))
            .collect();
        if place_slots(slices, &items).is_none() {
            return;
        }
        let min = sizes.iter().copied().min().unwrap_or(0);
        let max = sizes.iter().copied().max().unwrap_or(0);
        let score = (total, min, std::cmp::Reverse(max));
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            let mut s = sizes.clone();
            s.sort_unstable_by(|a, b| b.cmp(a));
            *best = Some((score, s));
        }
        return;
    }
    for (i, (size, _)) in shapes.iter().enumerate().skip(from) {
        sizes.push(*size);
        choose(shapes, i, k, slices, sizes, best);
        sizes.pop();
    }
}

/// The compute-instance profile ID `nvidia-smi mig -cci` takes for a compute instance of
/// `size` slices (`NVML_COMPUTE_INSTANCE_PROFILE_*`).
pub fn ci_profile_id(size: u32) -> Option<u32> {
    match size {
        1 => Some(0),
        2 => Some(1),
        3 => Some(2),
        4 => Some(3),
        7 => Some(4),
        8 => Some(5),
        6 => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::gpu::resolve_model;

    fn h100() -> GpuSpec {
        GpuSpec::builtin(resolve_model("h100-80gb").unwrap())
    }

    fn names(spec: &GpuSpec) -> Vec<String> {
        maximal(spec).iter().map(|l| l.name(spec)).collect()
    }

    #[test]
    fn h100_maximal_layouts() {
        let spec = h100();
        let layouts = maximal(&spec);
        let n = names(&spec);
        for want in [
            "7g.80gb",
            "4g.40gb+3g.40gb",
            "2×3g.40gb",
            "7×1g.10gb",
            "1g.20gb+6×1g.10gb",
            "3g.40gb+2×2g.20gb",
            "4g.40gb+2g.20gb+1g.20gb",
        ] {
            assert!(n.contains(&want.to_string()), "{want} missing from {n:?}");
        }
        assert!(!n.contains(&"4g.40gb".to_string()), "{n:?}");
        let mut sorted = n.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n.len(), "duplicates in {n:?}");
        for l in &layouts {
            let set: Vec<usize> = l.members.iter().map(|m| m.0).collect();
            assert!(fit(&spec, &set).is_some());
            assert!(!n.iter().any(|x| x.contains("+me")), "{n:?}");
        }
    }

    #[test]
    fn waste_of_the_seed_combinations() {
        let spec = h100();
        let find = |name: &str| {
            maximal(&spec)
                .into_iter()
                .find(|l| l.name(&spec) == name)
                .unwrap()
        };
        let l = find("2×3g.40gb");
        assert_eq!((l.idle_compute(&spec), l.idle_memory(&spec)), (1, 0));
        let l = find("7×1g.10gb");
        assert_eq!((l.idle_compute(&spec), l.idle_memory(&spec)), (0, 1));
        let l = find("4g.40gb+3g.40gb");
        assert_eq!((l.idle_compute(&spec), l.idle_memory(&spec)), (0, 0));
    }

    #[test]
    fn compute_instance_splits() {
        assert_eq!(ci_split(7, 1), Some(vec![7]));
        assert_eq!(ci_split(7, 2), Some(vec![4, 3]));
        assert_eq!(ci_split(7, 3), Some(vec![3, 2, 2]));
        assert_eq!(ci_split(7, 4), Some(vec![2, 2, 2, 1]));
        assert_eq!(ci_split(7, 7), Some(vec![1; 7]));
        assert_eq!(ci_split(3, 2), Some(vec![2, 1]));
        assert_eq!(ci_split(4, 2), Some(vec![2, 2]));
        assert_eq!(ci_split(4, 3), Some(vec![2, 1, 1]));
        assert_eq!(ci_split(1, 2), None);
        assert_eq!(ci_split(2, 0), None);
        assert_eq!(ci_profile_id(4), Some(3));
    }
}
