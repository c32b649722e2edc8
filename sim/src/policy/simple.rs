//! The policies operators use today on one GPU under MPS: everything at once, a fixed
//! stagger between starts, one job at a time; and a fixed schedule of start times (what the
//! oracle evaluates).

use crate::engine::{Ctx, Policy, Start};

/// Every job starts on arrival (MPS, no limits).
#[derive(Debug, Default)]
pub struct AllAtOnce;

impl Policy for AllAtOnce {
    fn decide(&mut self, _now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        ctx.queue
            .iter()
            .map(|&job| Start {
                job,
                slot: 0,
                limit: None,
            })
            .collect()
    }
}

/// Jobs start in arrival order, at least `gap_s` apart.
#[derive(Debug)]
pub struct Stagger {
    pub gap_s: f64,
    last: Option<f64>,
}

impl Stagger {
    pub fn new(gap_s: f64) -> Self {
        Stagger { gap_s, last: None }
    }
}

impl Policy for Stagger {
    fn decide(&mut self, now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        let Some(&job) = ctx.queue.first() else {
            return Vec::new();
        };
        if self.last.is_some_and(|l| now + 1e-9 < l + self.gap_s) {
            return Vec::new();
        }
        self.last = Some(now);
        vec![Start {
            job,
            slot: 0,
            limit: None,
        }]
    }

    fn wake_at(&self) -> Option<f64> {
        self.last.map(|l| l + self.gap_s)
    }
}

/// One job at a time, in arrival order.
#[derive(Debug, Default)]
pub struct Sequential;

impl Policy for Sequential {
    fn decide(&mut self, _now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        match (ctx.running.is_empty(), ctx.queue.first()) {
            (true, Some(&job)) => vec![Start {
                job,
                slot: 0,
                limit: None,
            }],
            _ => Vec::new(),
        }
    }
}

/// Starts job `i` at `at[i]` (or on arrival, if later), on the whole GPU.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub at: Vec<f64>,
    now: f64,
}

impl Schedule {
    pub fn new(at: Vec<f64>) -> Self {
        Schedule { at, now: 0.0 }
    }
}

impl Policy for Schedule {
    fn decide(&mut self, now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        self.now = now;
        ctx.queue
            .iter()
            .filter(|&&j| self.at.get(j).is_some_and(|&t| t <= now + 1e-9))
            .map(|&job| Start {
                job,
                slot: 0,
                limit: None,
            })
            .collect()
    }

    fn wake_at(&self) -> Option<f64> {
        self.at
            .iter()
            .copied()
            .filter(|&t| t > self.now + 1e-9)
            .min_by(f64::total_cmp)
    }
}
