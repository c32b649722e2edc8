//! Values over virtual time: piecewise-linear timelines, constant-or-timeline series
//! (activity, temperature, power) and memory tracks (a process's memory, absent while it
//! does not run).

/// A piecewise-linear function given by `(virtual_seconds, value)` points with strictly
/// increasing times. Between points the value is linearly interpolated.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    points: Vec<(f64, f64)>,
}

/// Why a list of points is not a timeline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimelineError {
    #[error("a timeline needs at least one point")]
    Empty,
    #[error("point {index}: time {time} is not a finite number of seconds ≥ 0")]
    BadTime { index: usize, time: f64 },
    #[error("point {index}: value {value} is not a finite number")]
    BadValue { index: usize, value: f64 },
    #[error("point {index}: time {time} s does not come after the previous point's {previous} s")]
    NotIncreasing {
        index: usize,
        time: f64,
        previous: f64,
    },
}

impl Timeline {
    /// Builds a timeline, checking that times are finite, ≥ 0 and strictly increasing.
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self, TimelineError> {
        if points.is_empty() {
            return Err(TimelineError::Empty);
        }
        let mut previous: Option<f64> = None;
        for (index, &(time, value)) in points.iter().enumerate() {
            if !time.is_finite() || time < 0.0 {
                return Err(TimelineError::BadTime { index, time });
            }
            if !value.is_finite() {
                return Err(TimelineError::BadValue { index, value });
            }
            if let Some(previous) = previous
                && time <= previous
            {
                return Err(TimelineError::NotIncreasing {
                    index,
                    time,
                    previous,
                });
            }
            previous = Some(time);
        }
        Ok(Self { points })
    }

    /// The points, in time order.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Time of the first point.
    pub fn start(&self) -> f64 {
        self.points.first().map_or(0.0, |p| p.0)
    }

    /// Time of the last point.
    pub fn end(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }

    /// Largest value of any point (the peak of a piecewise-linear function).
    pub fn max_value(&self) -> f64 {
        self.points
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The value at `t`, or `None` before the first or after the last point.
    pub fn at(&self, t: f64) -> Option<f64> {
        if t < self.start() || t > self.end() {
            return None;
        }
        Some(self.at_clamped(t))
    }

    /// The value at `t`, holding the first value before the first point and the last value
    /// after the last point.
    pub fn at_clamped(&self, t: f64) -> f64 {
        let (first, last) = match (self.points.first(), self.points.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return 0.0,
        };
        if t <= first.0 {
            return first.1;
        }
        if t >= last.0 {
            return last.1;
        }
        // First point strictly after t; t lies in [points[i-1], points[i]).
        let i = self.points.partition_point(|p| p.0 <= t);
        match (self.points.get(i.wrapping_sub(1)), self.points.get(i)) {
            (Some(&(t0, v0)), Some(&(t1, v1))) => v0 + (v1 - v0) * (t - t0) / (t1 - t0),
            _ => last.1,
        }
    }

    /// Integral of the clamped function over `[a, b]` (`a ≤ b`).
    pub fn integral_clamped(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        // Breakpoints inside (a, b), plus the ends: the function is linear between them.
        let mut xs = vec![a];
        xs.extend(self.points.iter().map(|p| p.0).filter(|&t| t > a && t < b));
        xs.push(b);
        xs.windows(2)
            .map(|w| match w {
                [x0, x1] => (x1 - x0) * (self.at_clamped(*x0) + self.at_clamped(*x1)) / 2.0,
                _ => 0.0,
            })
            .sum()
    }
}

/// A quantity that is either constant or follows a timeline (clamped at both ends).
#[derive(Debug, Clone, PartialEq)]
pub enum Series {
    Constant(f64),
    Timeline(Timeline),
}

impl Series {
    /// The value at virtual time `t`.
    pub fn at(&self, t: f64) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Timeline(tl) => tl.at_clamped(t),
        }
    }

    /// The mean over `[a, b]`; the value at `b` when the interval is empty.
    pub fn mean(&self, a: f64, b: f64) -> f64 {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        match self {
            Self::Constant(v) => *v,
            Self::Timeline(tl) if b > a => tl.integral_clamped(a, b) / (b - a),
            Self::Timeline(tl) => tl.at_clamped(b),
        }
    }

    /// Every value the series can take lies within `[lo, hi]`.
    pub fn within(&self, lo: f64, hi: f64) -> bool {
        match self {
            Self::Constant(v) => (lo..=hi).contains(v),
            Self::Timeline(tl) => tl.points().iter().all(|p| (lo..=hi).contains(&p.1)),
        }
    }
}

/// The memory of a static process over virtual time, in bytes. `None` means the process is
/// not running at that moment.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryTrack {
    /// Always running with this many bytes.
    Constant(u64),
    /// Follows the timeline; absent before its first and after its last point.
    Timeline(Timeline),
    /// Runs a workload's timeline starting at `start_s`, optionally again every
    /// `repeat_every_s` seconds.
    Workload {
        timeline: Timeline,
        start_s: f64,
        repeat_every_s: Option<f64>,
    },
}

impl MemoryTrack {
    /// Bytes in use at virtual time `t`, or `None` when the process does not run.
    pub fn at(&self, t: f64) -> Option<u64> {
        let v = match self {
            Self::Constant(b) => return Some(*b),
            Self::Timeline(tl) => tl.at(t)?,
            Self::Workload {
                timeline,
                start_s,
                repeat_every_s,
            } => {
                let mut local = t - start_s;
                if local < 0.0 {
                    return None;
                }
                if let Some(period) = repeat_every_s {
                    local %= period;
                }
                timeline.at(local)?
            }
        };
        Some(v.max(0.0).round() as u64)
    }

    /// Virtual times at which the track changes slope or appears/disappears, up to `horizon`
    /// seconds (used to check that static processes fit their device).
    pub fn breakpoints(&self, horizon: f64) -> Vec<f64> {
        match self {
            Self::Constant(_) => vec![0.0],
            Self::Timeline(tl) => tl.points().iter().map(|p| p.0).collect(),
            Self::Workload {
                timeline,
                start_s,
                repeat_every_s,
            } => {
                let mut out = Vec::new();
                let mut offset = *start_s;
                // A bounded number of repetitions keeps this cheap for long horizons.
                for _ in 0..64 {
                    if offset > horizon {
                        break;
                    }
                    out.extend(timeline.points().iter().map(|p| p.0 + offset));
                    match repeat_every_s {
                        Some(period) => offset += period,
                        None => break,
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl(points: &[(f64, f64)]) -> Timeline {
        Timeline::new(points.to_vec()).unwrap()
    }

    #[test]
    fn interpolates_linearly_between_points() {
        let t = tl(&[(0.0, 0.0), (10.0, 100.0), (20.0, 100.0), (30.0, 40.0)]);
        assert_eq!(t.at(0.0), Some(0.0));
        assert_eq!(t.at(5.0), Some(50.0));
        assert_eq!(t.at(10.0), Some(100.0));
        assert_eq!(t.at(15.0), Some(100.0));
        assert_eq!(t.at(25.0), Some(70.0));
        assert_eq!(t.at(30.0), Some(40.0));
    }

    #[test]
    fn absent_outside_clamped_inside() {
        let t = tl(&[(5.0, 1.0), (10.0, 3.0)]);
        assert_eq!(t.at(4.9), None);
        assert_eq!(t.at(10.1), None);
        assert_eq!(t.at_clamped(0.0), 1.0);
        assert_eq!(t.at_clamped(99.0), 3.0);
    }

    #[test]
    fn single_point_timeline() {
        let t = tl(&[(3.0, 7.0)]);
        assert_eq!(t.at(3.0), Some(7.0));
        assert_eq!(t.at(2.0), None);
        assert_eq!(t.at_clamped(100.0), 7.0);
    }

    #[test]
    fn rejects_bad_points() {
        assert_eq!(Timeline::new(vec![]), Err(TimelineError::Empty));
        assert!(matches!(
            Timeline::new(vec![(0.0, 1.0), (0.0, 2.0)]),
            Err(TimelineError::NotIncreasing { index: 1, .. })
        ));
        assert!(matches!(
            Timeline::new(vec![(-1.0, 1.0)]),
            Err(TimelineError::BadTime { index: 0, .. })
        ));
        assert!(matches!(
            Timeline::new(vec![(0.0, f64::NAN)]),
            Err(TimelineError::BadValue { index: 0, .. })
        ));
    }

    #[test]
    fn mean_integrates_piecewise() {
        let s = Series::Timeline(tl(&[(0.0, 0.0), (10.0, 1.0)]));
        assert!((s.mean(0.0, 10.0) - 0.5).abs() < 1e-12);
        // Clamped after the end: [5, 15] = avg of ramp 0.5..1 (5 s) and 1 (5 s).
        assert!((s.mean(5.0, 15.0) - 0.875).abs() < 1e-12);
        assert!((s.mean(7.0, 7.0) - 0.7).abs() < 1e-12);
        assert_eq!(Series::Constant(0.4).mean(0.0, 100.0), 0.4);
    }

    #[test]
    fn workload_tracks_start_and_repeat() {
        let m = MemoryTrack::Workload {
            timeline: tl(&[(0.0, 0.0), (10.0, 1000.0)]),
            start_s: 5.0,
            repeat_every_s: Some(20.0),
        };
        assert_eq!(m.at(4.0), None);
        assert_eq!(m.at(10.0), Some(500));
        assert_eq!(m.at(15.0), Some(1000));
        assert_eq!(m.at(16.0), None);
        assert_eq!(m.at(30.0), Some(500));
        let once = MemoryTrack::Workload {
            timeline: tl(&[(0.0, 0.0), (10.0, 1000.0)]),
            start_s: 0.0,
            repeat_every_s: None,
        };
        assert_eq!(once.at(25.0), None);
        assert_eq!(MemoryTrack::Constant(66).at(1e9), Some(66));
    }
}
