//! Contention: how much slower a job runs when it shares its device under MPS. A job with
//! `n` jobs on its device (itself included) advances through its workload at `1 / factor(n)`
//! of the clock. Used by the fake GPU (virtual clock) and by the goodput simulator and the
//! planner's makespan predictions (`headroom-sim`).

/// Slowdown factors for 1, 2, 3, ... jobs sharing one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Contention {
    mps_slowdown: Vec<f64>,
}

impl Default for Contention {
    /// No slowdown at all.
    fn default() -> Self {
        Self {
            mps_slowdown: vec![1.0],
        }
    }
}

impl Contention {
    /// Factors for 1, 2, 3, ... co-running jobs (validated by the scenario loader: non-empty,
    /// finite, ≥ 1).
    pub fn new(mps_slowdown: Vec<f64>) -> Self {
        if mps_slowdown.is_empty() {
            return Self::default();
        }
        Self { mps_slowdown }
    }

    /// The factors as given.
    pub fn factors(&self) -> &[f64] {
        &self.mps_slowdown
    }

    /// The slowdown with `n` jobs on the device. Beyond the list the last step is extended
    /// linearly (`[1.0, 1.69, 2.6]` gives 3.51 for 4 jobs).
    pub fn factor(&self, n: usize) -> f64 {
        let n = n.max(1);
        let list = &self.mps_slowdown;
        if let Some(f) = list.get(n - 1) {
            return *f;
        }
        match list.as_slice() {
            [.., a, b] => b + (b - a) * (n - list.len()) as f64,
            [only] => *only,
            [] => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_then_extrapolated() {
        let c = Contention::new(vec![1.0, 1.69, 2.6]);
        assert_eq!(c.factor(0), 1.0);
        assert_eq!(c.factor(1), 1.0);
        assert_eq!(c.factor(2), 1.69);
        assert_eq!(c.factor(3), 2.6);
        assert!((c.factor(4) - 3.51).abs() < 1e-9);
        assert!((c.factor(5) - 4.42).abs() < 1e-9);
        assert_eq!(Contention::default().factor(7), 1.0);
        assert_eq!(Contention::new(vec![]).factor(3), 1.0);
    }
}
