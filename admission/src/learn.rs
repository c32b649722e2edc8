//! Learning profiles from runs: the [`Run`] record the sidecar keeps for every admitted
//! process, and [`learn`], which turns a workload's recent runs into a [`Profile`] (upper
//! envelope on normalized progress, solo duration, contention stretch).

use crate::profile::{Profile, Stretch};
use serde::{Deserialize, Serialize};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran to the end.
    Completed,
    /// Died of a CUDA out-of-memory error (device full or its MPS limit).
    Oom,
    /// Failed for another reason.
    Failed,
    /// The sidecar lost track of it (restart with the process gone, cancelled, killed).
    Interrupted,
}

/// One observed run of a workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub workload: String,
    /// `(elapsed seconds since start, bytes used)` as sampled.
    pub samples: Vec<(f64, u64)>,
    /// Wall seconds from start to end.
    pub duration_s: f64,
    /// Co-runner count as a step function: `(elapsed seconds, co-runners from then on)`.
    /// Empty means it ran alone; a single `(0.0, mean)` gives just the mean.
    #[serde(default)]
    pub corunners: Vec<(f64, f64)>,
    pub outcome: Outcome,
    /// For an OOM: the allocation that failed, when the error message says.
    #[serde(default)]
    pub oom_attempted: Option<u64>,
}

impl Run {
    /// Time-weighted mean number of co-runners over the run.
    pub fn mean_corunners(&self) -> f64 {
        if self.duration_s <= 0.0 {
            return self.corunners.first().map_or(0.0, |c| c.1.max(0.0));
        }
        self.integrate(self.duration_s, |k| k) / self.duration_s
    }

    /// Solo-equivalent seconds done after `elapsed` seconds, with `per_corunner` slowdown:
    /// ∫ 1/(1 + per_corunner·k(t)) dt.
    pub fn solo_seconds(&self, elapsed: f64, per_corunner: f64) -> f64 {
        self.integrate(elapsed, |k| 1.0 / (1.0 + per_corunner.max(0.0) * k))
    }

    fn integrate(&self, until: f64, f: impl Fn(f64) -> f64) -> f64 {
        let until = until.max(0.0);
        let mut total = 0.0;
        let mut t = 0.0;
        let mut k = 0.0;
        for &(at, count) in &self.corunners {
            let at = at.max(0.0);
            if at >= until {
                break;
            }
            if at > t {
                total += f(k) * (at - t);
                t = at;
            }
            k = if count.is_finite() {
                count.max(0.0)
            } else {
                0.0
            };
        }
        total + f(k) * (until - t).max(0.0)
    }
}

/// Knobs of [`learn`].
#[derive(Clone, Debug, PartialEq)]
pub struct LearnConfig {
    /// Completed runs to learn from (the most recent ones). Failed, OOM and interrupted runs
    /// newer than the oldest of them are used too, so an OOM run never pushes one out.
    pub window: usize,
    /// Resolution of the envelope on the progress axis.
    pub bins: usize,
    /// Envelope levels are rounded up to a multiple of this (keeps profiles small).
    pub quantum: u64,
    /// Stretch assumed while the runs do not tell.
    pub prior: Stretch,
    /// Smallest jitter and spread ever learned.
    pub min_jitter: f64,
    pub min_spread: f64,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            window: 10,
            bins: 200,
            quantum: 128 << 20,
            prior: Stretch::PRIOR,
            min_jitter: 0.01,
            min_spread: 0.02,
        }
    }
}

/// Runs below this mean co-runner count count as solo runs for the duration estimate.
const SOLO: f64 = 0.25;

/// Learns `workload`'s profile from `runs` (chronological; other workloads' runs are
/// skipped). Returns `None` when no run of it has a sample.
///
/// - Duration and stretch come from completed runs only: solo runs give the solo duration
///   and the jitter; runs with co-runners give `per_corunner` (median of
///   `(duration/solo − 1)/mean co-runners`) and its spread; missing parts use the prior.
///   Without any completed run the duration is a lower bound: the longest run seen, and
///   the profile is marked [`Profile::is_lower_bound`] (the policy then gives the next run
///   a whole device instead of a limit that already proved too small).
/// - Each sample is mapped to progress with the run's own co-runner history (solo-equivalent
///   seconds), and the envelope is the per-bin maximum over runs, where the gap between two
///   samples counts at the larger of them; it is widened by one bin each side and rounded up
///   to `quantum`.
/// - An OOM run adds its last sample plus the allocation it attempted as a point at its
///   progress. No run lowers the envelope: with at least one completed run, adding an
///   OOM run never lowers any point.
pub fn learn(workload: &str, runs: &[Run], config: &LearnConfig) -> Option<Profile> {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.workload == workload).collect();
    let completed_at: Vec<usize> = mine
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outcome == Outcome::Completed && r.duration_s > 0.0)
        .map(|(i, _)| i)
        .collect();
    let window = config.window.max(1);
    let cutoff = if completed_at.len() > window {
        completed_at[completed_at.len() - window]
    } else {
        0
    };
    let selected: Vec<&Run> = mine[cutoff..]
        .iter()
        .copied()
        .filter(|r| r.samples.iter().any(|s| s.0.is_finite()))
        .collect();
    if selected.is_empty() {
        return None;
    }
    let completed: Vec<&Run> = selected
        .iter()
        .copied()
        .filter(|r| r.outcome == Outcome::Completed && r.duration_s > 0.0)
        .collect();

    let (stretch, solo) = fit_stretch(&completed, &selected, config);
    let bins = config.bins.max(8);
    let mut env: Vec<Option<u64>> = vec![None; bins];
    let bin_of = |p: f64| ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
    let cover = |env: &mut Vec<Option<u64>>, p0: f64, p1: f64, v: u64| {
        for slot in env.iter_mut().take(bin_of(p1) + 1).skip(bin_of(p0)) {
            *slot = Some(slot.map_or(v, |o| o.max(v)));
        }
    };
    for run in &selected {
        let a = stretch.per_corunner;
        let scale = if run.outcome == Outcome::Completed && run.duration_s > 0.0 {
            run.solo_seconds(run.duration_s, a)
        } else {
            solo
        };
        if scale <= 0.0 {
            continue;
        }
        let mut samples: Vec<(f64, u64)> = run
            .samples
            .iter()
            .filter(|s| s.0.is_finite())
            .map(|&(e, b)| ((run.solo_seconds(e, a) / scale).clamp(0.0, 1.0), b))
            .collect();
        samples.sort_by(|x, y| x.0.total_cmp(&y.0));
        let (Some(&first), Some(&last)) = (samples.first(), samples.last()) else {
            continue;
        };
        cover(&mut env, 0.0, first.0, first.1);
        for w in samples.windows(2) {
            cover(&mut env, w[0].0, w[1].0, w[0].1.max(w[1].1));
        }
        match run.outcome {
            Outcome::Completed => cover(&mut env, last.0, 1.0, last.1),
            Outcome::Oom => {
                let attempted = last.1.saturating_add(run.oom_attempted.unwrap_or(0));
                cover(&mut env, last.0, last.0, attempted);
            }
            Outcome::Failed | Outcome::Interrupted => {}
        }
    }
    // Fill bins no run reached with the larger of their nearest known neighbours.
    let known: Vec<(usize, u64)> = env
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    if known.is_empty() {
        return None;
    }
    let filled: Vec<u64> = (0..bins)
        .map(|i| {
            env[i].unwrap_or_else(|| {
                let k = known.partition_point(|&(j, _)| j < i);
                let right = known.get(k).map_or(0, |x| x.1);
                let left = k
                    .checked_sub(1)
                    .and_then(|k| known.get(k))
                    .map_or(0, |x| x.1);
                left.max(right)
            })
        })
        .collect();
    let q = config.quantum.max(1);
    let dilated: Vec<u64> = (0..bins)
        .map(|i| {
            let lo = i.saturating_sub(1);
            let hi = (i + 1).min(bins - 1);
            let m = filled[lo..=hi].iter().copied().max().unwrap_or(0);
            m.div_ceil(q).saturating_mul(q)
        })
        .collect();
    let points: Vec<(f64, u64)> = dilated
        .iter()
        .enumerate()
        .map(|(i, &b)| (i as f64 / bins as f64, b))
        .collect();
    Profile::new(
        workload,
        solo,
        points,
        stretch,
        u32::try_from(selected.len()).unwrap_or(u32::MAX),
    )
    .ok()
    .map(|p| p.with_lower_bound(completed.is_empty()))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Returns the stretch and the solo duration.
fn fit_stretch(completed: &[&Run], all: &[&Run], config: &LearnConfig) -> (Stretch, f64) {
    let prior = config.prior;
    if completed.is_empty() {
        let solo = all
            .iter()
            .map(|r| {
                let last = r.samples.iter().map(|s| s.0).fold(0.0, f64::max);
                r.solo_seconds(r.duration_s.max(last), prior.per_corunner)
            })
            .fold(0.0, f64::max);
        return (prior, solo.max(1.0));
    }
    let (solo_runs, co_runs): (Vec<&Run>, Vec<&Run>) = completed
        .iter()
        .copied()
        .partition(|r| r.mean_corunners() < SOLO);
    let mut a = prior.per_corunner;
    let mut spread = prior.spread;
    let base = if solo_runs.is_empty() {
        completed
    } else {
        &solo_runs[..]
    };
    let solo_of = |a: f64| {
        median(
            base.iter()
                .map(|r| r.solo_seconds(r.duration_s, a))
                .collect(),
        )
    };
    let mut solo = solo_of(a).unwrap_or(1.0);
    if !solo_runs.is_empty() && !co_runs.is_empty() {
        for _ in 0..3 {
            let estimates: Vec<f64> = co_runs
                .iter()
                .map(|r| ((r.duration_s / solo - 1.0) / r.mean_corunners()).clamp(0.0, 5.0))
                .collect();
            if let Some(m) = median(estimates.clone()) {
                a = m;
                let dev = estimates.iter().map(|x| (x - m).abs()).fold(0.0, f64::max);
                spread = dev
                    .max(config.min_spread)
                    .max(prior.spread / (co_runs.len() as f64).sqrt());
            }
            solo = solo_of(a).unwrap_or(solo);
        }
    }
    let dev = completed
        .iter()
        .map(|r| (r.solo_seconds(r.duration_s, a) / solo - 1.0).abs())
        .fold(0.0, f64::max);
    let jitter = dev
        .max(config.min_jitter)
        .max(prior.jitter / (completed.len() as f64).sqrt())
        .min(0.45);
    (
        Stretch {
            per_corunner: a.min(10.0),
            spread: spread.min(10.0),
            jitter,
        },
        solo.max(1e-3),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn ti2v_run(duration: f64, k: f64, peak: u64) -> Run {
        let n = 100;
        let samples = (0..=n)
            .map(|i| {
                let e = duration * i as f64 / n as f64;
                let b = if e / duration < 211.0 / 242.0 {
                    21 * GIB
                } else {
                    peak
                };
                (e, b)
            })
            .collect();
        Run {
            workload: "ti2v".into(),
            samples,
            duration_s: duration,
            corunners: if k > 0.0 { vec![(0.0, k)] } else { vec![] },
            outcome: Outcome::Completed,
            oom_attempted: None,
        }
    }

    #[test]
    fn learns_levels_duration_and_stretch() {
        let runs = vec![
            ti2v_run(242.0, 0.0, 33 * GIB),
            ti2v_run(240.0, 0.0, 33 * GIB),
            ti2v_run(410.0, 1.0, 33 * GIB),
            ti2v_run(576.0, 2.0, 33 * GIB),
        ];
        let p = learn("ti2v", &runs, &LearnConfig::default()).unwrap();
        assert!((p.duration_s() - 241.0).abs() < 1.5, "{}", p.duration_s());
        let s = p.stretch();
        assert!((s.per_corunner - 0.69).abs() < 0.02, "{s:?}");
        assert_eq!(p.peak(), 33 * GIB);
        assert_eq!(p.steady(), 21 * GIB);
        assert_eq!(p.runs(), 4);
        assert_eq!(p.at(0.5), 21 * GIB);
        assert_eq!(p.at(0.95), 33 * GIB);
    }

    #[test]
    fn prior_stretch_without_corun_history() {
        let p = learn(
            "ti2v",
            &[ti2v_run(242.0, 0.0, 33 * GIB)],
            &LearnConfig::default(),
        )
        .unwrap();
        assert_eq!(p.stretch().per_corunner, Stretch::PRIOR.per_corunner);
        assert_eq!(p.stretch().spread, Stretch::PRIOR.spread);
    }

    #[test]
    fn oom_raises_never_lowers() {
        let base = vec![ti2v_run(242.0, 0.0, 33 * GIB)];
        let before = learn("ti2v", &base, &LearnConfig::default()).unwrap();
        let mut runs = base.clone();
        runs.push(Run {
            workload: "ti2v".into(),
            samples: vec![(0.0, 10 * GIB), (100.0, 21 * GIB), (220.0, 34 * GIB)],
            duration_s: 221.0,
            corunners: vec![],
            outcome: Outcome::Oom,
            oom_attempted: Some(3 * GIB),
        });
        let after = learn("ti2v", &runs, &LearnConfig::default()).unwrap();
        assert_eq!(after.duration_s(), before.duration_s());
        assert_eq!(after.peak(), 37 * GIB);
        for i in 0..=1000 {
            let p = i as f64 / 1000.0;
            assert!(after.at(p) >= before.at(p), "lowered at {p}");
        }
    }

    #[test]
    fn only_failed_runs_make_a_lower_bound() {
        let oom = Run {
            workload: "s2v".into(),
            samples: vec![(0.0, GIB), (40.0, 30 * GIB), (50.0, 33 * GIB)],
            duration_s: 50.0,
            corunners: vec![],
            outcome: Outcome::Oom,
            oom_attempted: Some(2 * GIB),
        };
        let p = learn("s2v", std::slice::from_ref(&oom), &LearnConfig::default()).unwrap();
        assert!(p.is_lower_bound());
        let mut done = ti2v_run(245.0, 0.0, 58 * GIB);
        done.workload = "s2v".into();
        let p = learn("s2v", &[oom, done], &LearnConfig::default()).unwrap();
        assert!(!p.is_lower_bound());
        // The flag survives the serde form; profiles without it read as complete.
        let text = serde_json::to_string(&p.clone().with_lower_bound(true)).unwrap();
        assert!(text.contains("lower_bound"), "{text}");
        let back: Profile = serde_json::from_str(&text).unwrap();
        assert!(back.is_lower_bound());
        let plain: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert!(!plain.is_lower_bound());
    }

    #[test]
    fn solo_seconds_integrates_corunners() {
        let r = Run {
            workload: "w".into(),
            samples: vec![(0.0, 1)],
            duration_s: 300.0,
            corunners: vec![(0.0, 0.0), (100.0, 1.0), (200.0, 0.0)],
            outcome: Outcome::Completed,
            oom_attempted: None,
        };
        assert!((r.mean_corunners() - 1.0 / 3.0).abs() < 1e-9);
        let s = r.solo_seconds(300.0, 1.0);
        assert!((s - 250.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn unknown_workload_or_no_samples() {
        assert!(learn("x", &[], &LearnConfig::default()).is_none());
        let mut r = ti2v_run(100.0, 0.0, GIB);
        r.samples.clear();
        assert!(learn("ti2v", &[r], &LearnConfig::default()).is_none());
    }
}
