//! The oracle: knows every job's true (jittered) memory timeline and duration, and searches
//! start times on the whole GPU under MPS.
//!
//! - [`Greedy`]: at every event, starts each waiting job (in arrival order) as soon as a
//!   look-ahead (a copy of the engine run forward with no further starts) shows that no
//!   process would run out of memory. Exact, because the engine is deterministic.
//! - [`search`]: for a batch, improves on the greedy schedule and on any schedule given
//!   (the start times of every other policy's OOM-free run) by moving one job's start at a
//!   time, earlier or later, in steps of 60/30/10/5/1 s, keeping every change that finishes
//!   all jobs without an OOM and sooner. The result is never worse than any schedule it
//!   was given.

use crate::engine::{Ctx, Policy, Record, RunResult, Running, Sim, Slot, Start};
use crate::policy::simple::Schedule;
use crate::scenario::{Job, Scenario};

/// Starts nothing (for look-aheads).
#[derive(Debug, Default)]
struct Idle;

impl Policy for Idle {
    fn decide(&mut self, _now: f64, _ctx: &Ctx<'_>) -> Vec<Start> {
        Vec::new()
    }
}

/// Whether starting `extra` now, with `running` as they are, keeps every process within
/// memory until all of them end.
pub fn safe(
    scenario: &Scenario,
    jobs: &[Job],
    slots: &[Slot],
    now: f64,
    running: &[Running],
    extra: &[Start],
) -> bool {
    let mut sim = Sim::lookahead(scenario, jobs, slots.to_vec(), now, running.to_vec(), extra);
    let mut idle = Idle;
    while sim.step(&mut idle) {}
    let result = sim.finish();
    !result
        .jobs
        .iter()
        .any(|j| j.outcome.is_some_and(|o| o.is_oom()))
}

/// Earliest safe start, in arrival order, later jobs may go first when the head cannot.
#[derive(Debug, Default)]
pub struct Greedy;

impl Policy for Greedy {
    fn decide(&mut self, now: f64, ctx: &Ctx<'_>) -> Vec<Start> {
        let mut out: Vec<Start> = Vec::new();
        // A job of a workload that just failed the look-ahead is not tried again in the
        // same event: jobs of one workload differ only by jitter.
        let mut refused: Vec<usize> = Vec::new();
        for &job in ctx.queue {
            let workload = ctx.jobs.get(job).map_or(usize::MAX, |j| j.workload);
            if refused.contains(&workload) {
                continue;
            }
            let mut trial = out.clone();
            trial.push(Start {
                job,
                slot: 0,
                limit: None,
            });
            if safe(ctx.scenario, ctx.jobs, ctx.slots, now, ctx.running, &trial) {
                out = trial;
            } else {
                refused.push(workload);
            }
        }
        out
    }
}

/// Evaluates a schedule: `Some(makespan)` when every job finishes without an OOM.
pub fn evaluate(scenario: &Scenario, jobs: &[Job], slots: &[Slot], at: &[f64]) -> Option<f64> {
    let r = run_schedule(scenario, jobs, slots, at, Record::default());
    feasible(&r).then_some(r.end_time)
}

pub fn run_schedule(
    scenario: &Scenario,
    jobs: &[Job],
    slots: &[Slot],
    at: &[f64],
    record: Record,
) -> RunResult {
    let mut p = Schedule::new(at.to_vec());
    Sim::new(scenario, jobs, slots.to_vec(), record).run(&mut p)
}

fn feasible(r: &RunResult) -> bool {
    r.jobs
        .iter()
        .all(|j| j.outcome == Some(crate::engine::End::Completed))
}

/// Start times of a run (arrival time for jobs that never started).
pub fn starts_of(jobs: &[Job], r: &RunResult) -> Vec<f64> {
    jobs.iter()
        .zip(&r.jobs)
        .map(|(j, res)| res.start.unwrap_or(j.arrival))
        .collect()
}

/// Local search from the best of `seeds` (each a full schedule).
pub fn search(
    scenario: &Scenario,
    jobs: &[Job],
    slots: &[Slot],
    seeds: &[Vec<f64>],
) -> Option<(Vec<f64>, f64)> {
    let mut best: Option<(Vec<f64>, f64)> = None;
    for s in seeds {
        if let Some(m) = evaluate(scenario, jobs, slots, s)
            && best.as_ref().is_none_or(|b| m < b.1)
        {
            best = Some((s.clone(), m));
        }
    }
    let (mut at, mut makespan) = best?;
    for step in [60.0, 30.0, 10.0, 5.0, 1.0] {
        let mut improved = true;
        let mut rounds = 0;
        while improved && rounds < 20 {
            improved = false;
            rounds += 1;
            for i in 0..at.len() {
                for dir in [-1.0, 1.0] {
                    let mut trial = at.clone();
                    let arrival = jobs.get(i).map_or(0.0, |j| j.arrival);
                    trial[i] = (trial[i] + dir * step).max(arrival);
                    if trial[i] == at[i] {
                        continue;
                    }
                    if let Some(m) = evaluate(scenario, jobs, slots, &trial)
                        && m < makespan - 1e-6
                    {
                        at = trial;
                        makespan = m;
                        improved = true;
                    }
                }
            }
        }
    }
    Some((at, makespan))
}
