//! What the policy assumes about one process: the [`Basis`] of its reservation (a profile
//! snapshot, a declared peak, or a provisional reservation for an unknown workload) and the
//! [`Shape`] derived from it (steps in solo seconds, duration, stretch range).

use crate::profile::{Profile, Stretch};
use serde::{Deserialize, Serialize};

/// What a process's reservation was derived from when it was admitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The workload's learned profile, as it was at admission.
    Profile(Profile),
    /// A declared peak, held flat: over the workload's profile duration (with its stretch)
    /// when a profile exists, else until the process ends.
    Declared { peak: u64, profile: Option<Profile> },
    /// An unknown workload's first run: a flat reservation held until it ends.
    Provisional { bytes: u64 },
}

impl Basis {
    /// The most this basis ever reserves.
    pub fn peak(&self) -> u64 {
        match self {
            Basis::Profile(p) => p.peak(),
            Basis::Declared { peak, .. } => *peak,
            Basis::Provisional { bytes } => *bytes,
        }
    }
}

/// Most steps a planning shape keeps. A learned profile has one step per level its envelope
/// passes through (dozens along a loading ramp); the planner's cost grows with the steps,
/// so ramps are coarsened upwards (never below the profile) to this many.
const MAX_SEGS: usize = 10;

/// Coarsens `steps` (`(start, bytes)`, the last ending at `duration`) to at most `max`
/// steps, each at least the steps it replaces: repeatedly merges the adjacent pair whose
/// merge adds the least memory-time.
fn upper_envelope(mut steps: Vec<(f64, u64)>, duration: f64, max: usize) -> Vec<(f64, u64)> {
    let max = max.max(1);
    let end = |steps: &[(f64, u64)], i: usize| steps.get(i + 1).map_or(duration, |s| s.0);
    while steps.len() > max {
        let mut best: Option<(f64, usize)> = None;
        for i in 0..steps.len() - 1 {
            let (a, b) = (steps[i], steps[i + 1]);
            let top = a.1.max(b.1);
            let len_a = (b.0 - a.0).max(0.0);
            let len_b = (end(&steps, i + 1) - b.0).max(0.0);
            let cost = (top - a.1) as f64 * len_a + (top - b.1) as f64 * len_b;
            if best.is_none_or(|x| cost < x.0) {
                best = Some((cost, i));
            }
        }
        let Some((_, i)) = best else { break };
        let top = steps[i].1.max(steps[i + 1].1);
        steps[i].1 = top;
        steps.remove(i + 1);
    }
    steps
}

/// A process's predicted memory in solo time, as the timeline uses it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shape {
    /// `(solo seconds, bytes)` steps, first at 0, strictly increasing.
    pub segs: Vec<(f64, u64)>,
    /// Solo duration; `f64::INFINITY` when open-ended.
    pub duration: f64,
    /// Point estimate and range of the slowdown per co-runner, and the jitter.
    pub a: f64,
    pub a_min: f64,
    pub a_max: f64,
    pub jitter: f64,
    pub peak: u64,
}

impl Shape {
    pub fn from_basis(basis: &Basis) -> Shape {
        match basis {
            Basis::Profile(p) => Shape::from_profile(p, None),
            Basis::Declared {
                peak,
                profile: Some(p),
            } => Shape::from_profile(p, Some(*peak)),
            Basis::Declared {
                peak,
                profile: None,
            } => Shape::flat(*peak),
            Basis::Provisional { bytes } => Shape::flat(*bytes),
        }
    }

    fn from_profile(p: &Profile, flat: Option<u64>) -> Shape {
        let s: Stretch = p.stretch();
        let (a_min, a_max) = s.per_corunner_range();
        let segs = match flat {
            Some(b) => vec![(0.0, b)],
            None => upper_envelope(p.solo_steps(), p.duration_s(), MAX_SEGS),
        };
        let peak = segs.iter().map(|s| s.1).max().unwrap_or(0);
        Shape {
            segs,
            duration: p.duration_s(),
            a: s.per_corunner.clamp(a_min, a_max),
            a_min,
            a_max,
            jitter: s.jitter.clamp(0.0, 0.49),
            peak,
        }
    }

    /// Flat and open-ended.
    pub fn flat(bytes: u64) -> Shape {
        Shape {
            segs: vec![(0.0, bytes)],
            duration: f64::INFINITY,
            a: 0.0,
            a_min: 0.0,
            a_max: 0.0,
            jitter: 0.0,
            peak: bytes,
        }
    }

    pub fn is_finite(&self) -> bool {
        self.duration.is_finite()
    }

    /// Index of the segment holding solo time `tau`.
    pub fn seg_of(&self, tau: f64) -> usize {
        self.segs
            .partition_point(|&(s, _)| s <= tau)
            .saturating_sub(1)
    }

    /// Start of the segment after `i` (or the duration).
    pub fn next_boundary(&self, i: usize) -> f64 {
        self.segs.get(i + 1).map_or(self.duration, |s| s.0)
    }

    /// Maximum over segments `i..=j`.
    pub fn max_segs(&self, i: usize, j: usize) -> u64 {
        let j = j.min(self.segs.len().saturating_sub(1));
        self.segs
            .get(i.min(j)..=j)
            .map_or(0, |s| s.iter().map(|x| x.1).max().unwrap_or(0))
    }

    /// The per-co-runner factor range of stretch band `[t0, t1]` (fractions of the range).
    pub fn band(&self, t0: f64, t1: f64) -> (f64, f64) {
        let w = self.a_max - self.a_min;
        (self.a_min + w * t0, self.a_min + w * t1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_envelope_never_lowers_and_keeps_the_bound() {
        // A ramp of 30 steps, a plateau, a peak.
        let mut steps: Vec<(f64, u64)> = (0..30).map(|i| (f64::from(i), i as u64 * 100)).collect();
        steps.push((30.0, 3000));
        steps.push((200.0, 5000));
        let at = |s: &[(f64, u64)], t: f64| {
            let i = s.partition_point(|x| x.0 <= t).saturating_sub(1);
            s[i].1
        };
        let out = upper_envelope(steps.clone(), 240.0, 10);
        assert_eq!(out.len(), 10);
        assert_eq!(out.first().unwrap().0, 0.0);
        for k in 0..2400 {
            let t = f64::from(k) / 10.0;
            assert!(at(&out, t) >= at(&steps, t), "lowered at {t}");
        }
        // The long plateau and the peak survive unchanged.
        assert_eq!(at(&out, 100.0), 3000);
        assert_eq!(at(&out, 220.0), 5000);
        // Already small: untouched.
        assert_eq!(
            upper_envelope(steps[..5].to_vec(), 5.0, 10),
            steps[..5].to_vec()
        );
    }
}
