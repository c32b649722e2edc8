//! Learned memory profiles: a workload's upper envelope of memory over normalized progress
//! (0 = start, 1 = end), its solo duration, its contention stretch, and the compact serde form
//! operators export and import (`name`, `duration_s`, `runs`, `points`, `stretch`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a workload slows down beside co-runners (DESIGN property 5).
///
/// With `k` co-runners on its device a run takes `1 + per_corunner·k` times its solo
/// duration. The true factor per co-runner is assumed to lie in
/// `[per_corunner − spread, per_corunner + spread]`, and one run's own speed varies by
/// `± jitter` (relative). So a run with `k` co-runners is slowed by a factor between
/// `s_min = (1 + (per_corunner − spread)·k)·(1 − jitter)` and
/// `s_max = (1 + (per_corunner + spread)·k)·(1 + jitter)`: the window widens with co-runners.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stretch {
    /// Extra duration per co-runner, as a fraction of the solo duration.
    pub per_corunner: f64,
    /// Uncertainty of `per_corunner` (±, absolute).
    #[serde(default)]
    pub spread: f64,
    /// Relative run-to-run speed variation (±), e.g. 0.03 for 3 %.
    #[serde(default)]
    pub jitter: f64,
}

impl Stretch {
    /// The prior used when a workload has no co-run history: the seeds' Wan2.2 TI2V-5B took
    /// 242 s alone and ≈410 s beside one co-runner (0.69 per co-runner); S2V-14B 245 s → 410 s
    /// (0.67) and TI2V-5B beside S2V-14B 450 s (0.86) are inside the ±0.2 spread.
    pub const PRIOR: Stretch = Stretch {
        per_corunner: 0.69,
        spread: 0.2,
        jitter: 0.05,
    };

    /// The point estimate of the slowdown with `k` co-runners.
    pub fn factor(&self, k: f64) -> f64 {
        1.0 + self.per_corunner.max(0.0) * k.max(0.0)
    }

    /// Smallest and largest per-co-runner factor the model allows.
    pub fn per_corunner_range(&self) -> (f64, f64) {
        let lo = (self.per_corunner - self.spread).max(0.0);
        (lo, (self.per_corunner + self.spread).max(lo))
    }

    /// `(s_min, s_max)`: the fastest and slowest slowdown factor with `k` co-runners.
    pub fn bounds(&self, k: f64) -> (f64, f64) {
        let (lo, hi) = self.per_corunner_range();
        let k = k.max(0.0);
        (
            (1.0 + lo * k) * (1.0 - self.jitter),
            (1.0 + hi * k) * (1.0 + self.jitter),
        )
    }

    fn check(&self) -> Result<(), ProfileError> {
        let ok = self.per_corunner.is_finite()
            && (0.0..=10.0).contains(&self.per_corunner)
            && self.spread.is_finite()
            && (0.0..=10.0).contains(&self.spread)
            && self.jitter.is_finite()
            && (0.0..0.5).contains(&self.jitter);
        if ok {
            Ok(())
        } else {
            Err(ProfileError::BadStretch)
        }
    }
}

impl Default for Stretch {
    fn default() -> Self {
        Self::PRIOR
    }
}

/// Why a profile was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileError {
    EmptyName,
    BadDuration(f64),
    NoPoints,
    FirstPointNotAtZero(f64),
    ProgressOutOfRange(f64),
    NotIncreasing(f64),
    BadStretch,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName => write!(f, "profile name is empty"),
            Self::BadDuration(d) => write!(f, "duration_s {d} must be finite and > 0"),
            Self::NoPoints => write!(f, "profile has no points"),
            Self::FirstPointNotAtZero(p) => write!(f, "first point is at progress {p}, not 0"),
            Self::ProgressOutOfRange(p) => write!(f, "progress {p} is outside [0, 1)"),
            Self::NotIncreasing(p) => write!(f, "progress {p} does not increase"),
            Self::BadStretch => write!(
                f,
                "stretch needs 0 ≤ per_corunner ≤ 10, 0 ≤ spread ≤ 10 and 0 ≤ jitter < 0.5"
            ),
        }
    }
}

impl std::error::Error for ProfileError {}

/// A workload's learned memory-over-time profile.
///
/// `points` is a step function on normalized progress: `(p, bytes)` means "from progress `p`
/// until the next point, at most `bytes`". Progress `p` of a run corresponds to `p ×
/// duration_s` solo seconds. The envelope is an upper bound over the runs it was learned from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProfileRepr", into = "ProfileRepr")]
pub struct Profile {
    name: String,
    duration_s: f64,
    runs: u32,
    points: Vec<(f64, u64)>,
    stretch: Stretch,
    /// Learned from runs none of which completed (each died of OOM or failed): the
    /// envelope is only a lower bound of what the workload needs.
    lower_bound: bool,
}

/// The serde form (TOML/JSON): exactly the fields an operator edits.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRepr {
    name: String,
    duration_s: f64,
    #[serde(default)]
    runs: u32,
    points: Vec<(f64, u64)>,
    #[serde(default)]
    stretch: Stretch,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    lower_bound: bool,
}

impl TryFrom<ProfileRepr> for Profile {
    type Error = ProfileError;
    fn try_from(r: ProfileRepr) -> Result<Self, ProfileError> {
        Profile::new(r.name, r.duration_s, r.points, r.stretch, r.runs)
            .map(|p| p.with_lower_bound(r.lower_bound))
    }
}

impl From<Profile> for ProfileRepr {
    fn from(p: Profile) -> Self {
        ProfileRepr {
            name: p.name,
            duration_s: p.duration_s,
            runs: p.runs,
            points: p.points,
            stretch: p.stretch,
            lower_bound: p.lower_bound,
        }
    }
}

impl Profile {
    /// A validated profile. Points must start at progress 0 and increase strictly inside
    /// `[0, 1)`; consecutive points with equal bytes are merged.
    pub fn new(
        name: impl Into<String>,
        duration_s: f64,
        points: Vec<(f64, u64)>,
        stretch: Stretch,
        runs: u32,
    ) -> Result<Self, ProfileError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(ProfileError::EmptyName);
        }
        if !(duration_s.is_finite() && duration_s > 0.0) {
            return Err(ProfileError::BadDuration(duration_s));
        }
        stretch.check()?;
        let first = points.first().ok_or(ProfileError::NoPoints)?.0;
        if first != 0.0 {
            return Err(ProfileError::FirstPointNotAtZero(first));
        }
        let mut merged: Vec<(f64, u64)> = Vec::with_capacity(points.len());
        for (p, b) in points {
            if !(p.is_finite() && (0.0..1.0).contains(&p)) {
                return Err(ProfileError::ProgressOutOfRange(p));
            }
            if let Some(&(last_p, last_b)) = merged.last() {
                if p <= last_p {
                    return Err(ProfileError::NotIncreasing(p));
                }
                if last_b == b {
                    continue;
                }
            }
            merged.push((p, b));
        }
        Ok(Profile {
            name,
            duration_s,
            runs,
            points: merged,
            stretch,
            lower_bound: false,
        })
    }

    /// Marks the profile as learned from runs that never completed (see
    /// [`Profile::is_lower_bound`]).
    pub fn with_lower_bound(mut self, lower_bound: bool) -> Self {
        self.lower_bound = lower_bound;
        self
    }

    /// Whether no run it was learned from completed: its envelope is only a lower bound,
    /// and the policy gives the workload's next run all the room a device has.
    pub fn is_lower_bound(&self) -> bool {
        self.lower_bound
    }

    /// A profile from steps given in solo seconds, e.g. `[(0.0, 21.7 GiB), (211.0, 33.2 GiB)]`
    /// with `duration_s = 242`.
    pub fn from_solo_steps(
        name: impl Into<String>,
        duration_s: f64,
        steps: &[(f64, u64)],
        stretch: Stretch,
        runs: u32,
    ) -> Result<Self, ProfileError> {
        if !(duration_s.is_finite() && duration_s > 0.0) {
            return Err(ProfileError::BadDuration(duration_s));
        }
        let points = steps.iter().map(|&(t, b)| (t / duration_s, b)).collect();
        Profile::new(name, duration_s, points, stretch, runs)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// Estimated duration when running alone, seconds.
    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }
    /// Number of runs it was learned from (0 for a seeded profile).
    pub fn runs(&self) -> u32 {
        self.runs
    }
    /// The envelope: `(progress, bytes)` steps.
    pub fn points(&self) -> &[(f64, u64)] {
        &self.points
    }
    pub fn stretch(&self) -> Stretch {
        self.stretch
    }

    /// The highest level of the envelope.
    pub fn peak(&self) -> u64 {
        self.points.iter().map(|&(_, b)| b).max().unwrap_or(0)
    }

    /// The steady level: the level the run spends the most progress at or below half the
    /// time (time-weighted median of the envelope).
    pub fn steady(&self) -> u64 {
        let mut levels: Vec<(u64, f64)> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, &(p, b))| {
                let end = self.points.get(i + 1).map_or(1.0, |n| n.0);
                (b, end - p)
            })
            .collect();
        levels.sort_by_key(|&(b, _)| b);
        let mut acc = 0.0;
        for (b, w) in &levels {
            acc += w;
            if acc >= 0.5 {
                return *b;
            }
        }
        self.peak()
    }

    /// The envelope's value at `progress` (clamped to `[0, 1]`).
    pub fn at(&self, progress: f64) -> u64 {
        let i = self.segment(progress);
        self.points.get(i).map_or(0, |&(_, b)| b)
    }

    /// The envelope's maximum over the progress range `[p0, p1]` (clamped to `[0, 1]`).
    pub fn max_over(&self, p0: f64, p1: f64) -> u64 {
        let (a, b) = if p0 <= p1 { (p0, p1) } else { (p1, p0) };
        let (i, j) = (self.segment(a), self.segment(b));
        self.points
            .get(i..=j)
            .map_or(0, |s| s.iter().map(|&(_, v)| v).max().unwrap_or(0))
    }

    fn segment(&self, progress: f64) -> usize {
        let p = if progress.is_nan() {
            0.0
        } else {
            progress.clamp(0.0, 1.0)
        };
        self.points
            .partition_point(|&(start, _)| start <= p)
            .saturating_sub(1)
    }

    /// The progress window `[earliest, latest]` a run can have reached after `elapsed_s`
    /// seconds with `corunners` co-runners all along: progress lies between
    /// `elapsed/(duration·s_max)` and `elapsed/(duration·s_min)` (both capped at 1).
    pub fn window(&self, elapsed_s: f64, corunners: f64) -> (f64, f64) {
        let (s_min, s_max) = self.stretch.bounds(corunners);
        let e = elapsed_s.max(0.0);
        (
            (e / (self.duration_s * s_max)).min(1.0),
            (e / (self.duration_s * s_min)).min(1.0),
        )
    }

    /// Predicted memory of a run `elapsed_s` seconds after its start with `corunners`
    /// co-runners: the envelope's maximum over [`Profile::window`]; 0 once even the slowest
    /// run has finished.
    pub fn predict(&self, elapsed_s: f64, corunners: f64) -> u64 {
        let (lo, hi) = self.window(elapsed_s, corunners);
        if lo >= 1.0 { 0 } else { self.max_over(lo, hi) }
    }

    /// The envelope as `(solo seconds, bytes)` steps.
    pub fn solo_steps(&self) -> Vec<(f64, u64)> {
        self.points
            .iter()
            .map(|&(p, b)| (p * self.duration_s, b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn ti2v() -> Profile {
        Profile::from_solo_steps(
            "ti2v",
            242.0,
            &[(0.0, 21 * GIB), (211.0, 33 * GIB)],
            Stretch::PRIOR,
            3,
        )
        .unwrap()
    }

    #[test]
    fn levels() {
        let p = ti2v();
        assert_eq!(p.peak(), 33 * GIB);
        assert_eq!(p.steady(), 21 * GIB);
        assert_eq!(p.at(0.0), 21 * GIB);
        assert_eq!(p.at(0.9), 33 * GIB);
        assert_eq!(p.at(1.0), 33 * GIB);
        assert_eq!(p.max_over(0.1, 0.5), 21 * GIB);
        assert_eq!(p.max_over(0.5, 0.9), 33 * GIB);
    }

    #[test]
    fn validation() {
        let s = Stretch::PRIOR;
        assert_eq!(
            Profile::new("x", 1.0, vec![], s, 0),
            Err(ProfileError::NoPoints)
        );
        assert!(Profile::new("x", 0.0, vec![(0.0, 1)], s, 0).is_err());
        assert!(Profile::new("", 1.0, vec![(0.0, 1)], s, 0).is_err());
        assert!(Profile::new("x", 1.0, vec![(0.1, 1)], s, 0).is_err());
        assert!(Profile::new("x", 1.0, vec![(0.0, 1), (0.0, 2)], s, 0).is_err());
        assert!(Profile::new("x", 1.0, vec![(0.0, 1), (1.0, 2)], s, 0).is_err());
        let bad = Stretch { jitter: 0.7, ..s };
        assert!(Profile::new("x", 1.0, vec![(0.0, 1)], bad, 0).is_err());
        let merged = Profile::new("x", 1.0, vec![(0.0, 1), (0.5, 1), (0.7, 2)], s, 0).unwrap();
        assert_eq!(merged.points(), &[(0.0, 1), (0.7, 2)]);
    }

    #[test]
    fn prediction_window_widens_with_corunners() {
        let p = ti2v();
        let (a0, b0) = p.window(100.0, 0.0);
        let (a2, b2) = p.window(100.0, 2.0);
        assert!(b0 - a0 < b2 - a2 || (b2 - a2) / b2 > (b0 - a0) / b0);
        assert!(a2 < a0 && b2 < b0);
        // Solo, 205 s in: the fastest run (−5 %) may already be in the peak.
        assert_eq!(p.predict(205.0, 0.0), 33 * GIB);
        assert_eq!(p.predict(150.0, 0.0), 21 * GIB);
        // With one co-runner, 205 s is early: steady.
        assert_eq!(p.predict(205.0, 1.0), 21 * GIB);
        // Long after even the slowest run ends: nothing.
        assert_eq!(p.predict(10_000.0, 0.0), 0);
    }
}
