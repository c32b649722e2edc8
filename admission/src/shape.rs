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
            None => p.solo_steps(),
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
