//! Test harness shared by the integration tests: a ground-truth simulation of processes on
//! devices in virtual time (contention slows everyone, memory follows a true curve under the
//! profile's envelope) and an independent checker of the policy's safety claim.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use headroom_admission::*;

pub const GIB: u64 = 1 << 30;

pub fn gib(x: f64) -> u64 {
    (x * GIB as f64).round() as u64
}

/// Step function in solo seconds, `(start, bytes)`.
#[derive(Clone, Debug)]
pub struct Curve {
    pub steps: Vec<(f64, u64)>,
    pub duration: f64,
}

impl Curve {
    pub fn at(&self, tau: f64) -> u64 {
        let i = self.steps.partition_point(|s| s.0 <= tau).saturating_sub(1);
        self.steps[i].1
    }
    /// Max over [t0, t1].
    pub fn max_over(&self, t0: f64, t1: f64) -> u64 {
        let mut m = self.at(t0);
        for s in &self.steps {
            if s.0 > t0 && s.0 <= t1 {
                m = m.max(s.1);
            }
        }
        m
    }
}

/// One process in the ground truth.
#[derive(Clone, Debug)]
pub struct TrueJob {
    pub id: RequestId,
    pub device: usize,
    pub curve: Curve,
    /// Per-co-runner slowdown and own speed factor (rate = 1/((1 + a k)(1 + eps))).
    pub a: f64,
    pub eps: f64,
    pub done: f64,
    pub start: f64,
    /// MPS limit: the process fails alone (OOM) when it would go above it.
    pub limit: u64,
    pub finished: Option<(f64, Outcome)>,
}

impl TrueJob {
    pub fn rate(&self, k: usize) -> f64 {
        1.0 / ((1.0 + self.a * k as f64) * (1.0 + self.eps))
    }
    pub fn alive(&self) -> bool {
        self.finished.is_none()
    }
}

/// Memory of each alive job on `device` over the next `dt` seconds (max within the step),
/// capped at its limit. Advances the jobs. Returns the step's total.
pub fn step_device(jobs: &mut [&mut TrueJob], dt: f64) -> u64 {
    let k = jobs.iter().filter(|j| j.alive()).count().saturating_sub(1);
    let mut total = 0u64;
    for j in jobs.iter_mut().filter(|j| j.alive()) {
        let next = (j.done + dt * j.rate(k)).min(j.curve.duration);
        total += j.curve.max_over(j.done, next).min(j.limit);
        j.done = next;
    }
    total
}

/// The independent check of the admission claim: from the true current state of the jobs on
/// one device (running ones only, no further admissions), simulate futures in which every
/// job runs anywhere inside the model (the device's common contention factor `theta` in
/// [0, 1] of each workload's range, own speed within ± jitter) with memory at the envelope,
/// and report the largest total seen at any moment.
pub struct ModelJob {
    pub envelope: Curve,
    pub done: f64,
    pub a_min: f64,
    pub a_max: f64,
    pub jitter: f64,
    /// Live usage: never predicted below it while alive.
    pub floor: u64,
    /// Open-ended (declared peak without profile, provisional): never ends in the future.
    pub open: bool,
}

pub fn worst_future(jobs: &[ModelJob], theta: f64, eps_sign: &[f64], dt: f64) -> u64 {
    let mut done: Vec<f64> = jobs.iter().map(|j| j.done).collect();
    let mut worst = 0u64;
    for _ in 0..200_000 {
        let alive: Vec<bool> = jobs
            .iter()
            .zip(&done)
            .map(|(j, d)| j.open || *d < j.envelope.duration)
            .collect();
        let k = alive.iter().filter(|a| **a).count().saturating_sub(1) as f64;
        let mut total = 0u64;
        let mut any_finite = false;
        for (i, j) in jobs.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            if j.open {
                total += j.envelope.at(0.0).max(j.floor);
                continue;
            }
            any_finite = true;
            let a = j.a_min + theta * (j.a_max - j.a_min);
            let eps = eps_sign[i % eps_sign.len()] * j.jitter;
            let rate = 1.0 / ((1.0 + a * k) * (1.0 + eps));
            let next = (done[i] + dt * rate).min(j.envelope.duration);
            total += j.envelope.max_over(done[i], next).max(j.floor);
            done[i] = next;
        }
        worst = worst.max(total);
        if !any_finite {
            break;
        }
    }
    worst
}
