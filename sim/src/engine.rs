//! The discrete-event engine: virtual time advances from event to event (arrivals,
//! completions, a policy's wake-up time and the sampling tick, at which memory is checked
//! and observed). Between events every process progresses at a constant rate: its device's
//! speed divided by the MPS slowdown for the number of processes sharing the device.
//!
//! OOM semantics, like CUDA under MPS: at each memory check a process above its MPS memory
//! limit fails; then, while a device's processes plus its unmanaged memory exceed its
//! capacity, the process that allocated the most since the last check fails (its work is
//! lost, its memory freed).

use crate::scenario::{Job, Scenario};

/// A device a policy can start processes on: the whole GPU, or one MIG instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub capacity: u64,
    /// Full-GPU speed multiplier of a process alone on this device.
    pub speed: f64,
    /// Memory no policy controls (the MPS server).
    pub unmanaged: u64,
}

/// A policy's order: start `job` on `slot`, with an MPS memory limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    pub job: usize,
    pub slot: usize,
    pub limit: Option<u64>,
}

/// A running process as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub job: usize,
    pub slot: usize,
    pub started: f64,
    /// Solo seconds of its own run done so far.
    pub progress: f64,
    pub limit: Option<u64>,
    /// Memory at the last check.
    pub used: u64,
    samples: Vec<(f64, u64)>,
    corunners: Vec<(f64, f64)>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Completed,
    /// The device ran out of memory while this process allocated.
    OomDevice,
    /// The process passed its MPS memory limit.
    OomLimit,
}

impl End {
    pub fn is_oom(self) -> bool {
        !matches!(self, End::Completed)
    }
}

/// A finished process, with what a sidecar would have recorded of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub job: usize,
    pub slot: usize,
    pub started: f64,
    pub ended: f64,
    pub end: End,
    /// `(elapsed, bytes)` at each sampling tick (empty unless recording runs).
    pub samples: Vec<(f64, u64)>,
    /// Co-runners as a step function of elapsed time.
    pub corunners: Vec<(f64, f64)>,
    /// For an OOM: what it tried to allocate.
    pub attempted: Option<u64>,
}

/// What a policy sees.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub scenario: &'a Scenario,
    pub jobs: &'a [Job],
    pub slots: &'a [Slot],
    /// Waiting jobs, in arrival order.
    pub queue: &'a [usize],
    pub running: &'a [Running],
}

/// A scheduling policy.
pub trait Policy {
    fn arrived(&mut self, _job: &Job, _now: f64) {}
    /// After each sampling tick's memory check.
    fn observed(&mut self, _now: f64, _ctx: &Ctx<'_>) {}
    fn ended(&mut self, _e: &Ended, _now: f64) {}
    /// Called at every event: the jobs to start now.
    fn decide(&mut self, now: f64, ctx: &Ctx<'_>) -> Vec<Start>;
    /// When to be asked again even if nothing happens.
    fn wake_at(&self) -> Option<f64> {
        None
    }
}

/// What happened to one job.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JobResult {
    pub slot: Option<usize>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub outcome: Option<End>,
}

/// Memory of every process at one tick: `(time, [(job, slot, bytes)])`.
pub type TracePoint = (f64, Vec<(usize, usize, u64)>);

/// A whole run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunResult {
    pub jobs: Vec<JobResult>,
    /// ∫ Σ process memory dt, byte-seconds.
    pub memory_time: f64,
    /// When the last process ended (or the horizon, when some never finished).
    pub end_time: f64,
    pub trace: Vec<TracePoint>,
}

/// Recording switches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Record {
    /// Per-tick samples of each process (for learning).
    pub samples: bool,
    /// Per-tick memory of every process (for charts).
    pub trace: bool,
}

const EPS: f64 = 1e-9;

/// The engine's state: cloneable, so a policy can look ahead by running a copy.
#[derive(Debug, Clone)]
pub struct Sim<'a> {
    pub scenario: &'a Scenario,
    pub jobs: &'a [Job],
    pub slots: Vec<Slot>,
    pub now: f64,
    pub queue: Vec<usize>,
    pub running: Vec<Running>,
    next_arrival: usize,
    next_tick: f64,
    horizon: f64,
    idle_ticks: u32,
    record: Record,
    pub result: RunResult,
}

impl<'a> Sim<'a> {
    pub fn new(scenario: &'a Scenario, jobs: &'a [Job], slots: Vec<Slot>, record: Record) -> Self {
        let last_arrival = jobs.iter().map(|j| j.arrival).fold(0.0, f64::max);
        let work: f64 = jobs.iter().map(|j| scenario.duration(j)).sum();
        let slowest = slots
            .iter()
            .map(|s| s.speed)
            .fold(f64::INFINITY, f64::min)
            .max(0.01);
        let horizon = last_arrival + 4.0 * work / slowest + 3600.0;
        Sim {
            scenario,
            jobs,
            slots,
            now: 0.0,
            queue: Vec::new(),
            running: Vec::new(),
            next_arrival: 0,
            next_tick: 0.0,
            horizon,
            idle_ticks: 0,
            record,
            result: RunResult {
                jobs: vec![JobResult::default(); jobs.len()],
                ..RunResult::default()
            },
        }
    }

    /// A copy of a running simulation at `now` with no further arrivals, `extra` started
    /// at once: for policies that look ahead.
    pub fn lookahead(
        scenario: &'a Scenario,
        jobs: &'a [Job],
        slots: Vec<Slot>,
        now: f64,
        running: Vec<Running>,
        extra: &[Start],
    ) -> Self {
        let mut sim = Sim::new(scenario, jobs, slots, Record::default());
        sim.horizon += now;
        sim.now = now;
        sim.next_arrival = jobs.len();
        sim.next_tick = ((now / scenario.sample_s).floor() + 1.0) * scenario.sample_s;
        for r in &running {
            if let Some(j) = sim.result.jobs.get_mut(r.job) {
                j.slot = Some(r.slot);
                j.start = Some(r.started);
            }
        }
        sim.running = running;
        for s in extra {
            sim.queue.push(s.job);
            sim.start(*s);
        }
        sim
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            scenario: self.scenario,
            jobs: self.jobs,
            slots: &self.slots,
            queue: &self.queue,
            running: &self.running,
        }
    }

    /// Whether nothing is left to do.
    pub fn done(&self) -> bool {
        self.queue.is_empty() && self.running.is_empty() && self.next_arrival >= self.jobs.len()
    }

    /// Runs to the end under `policy`.
    pub fn run(mut self, policy: &mut dyn Policy) -> RunResult {
        while self.step(policy) {}
        self.finish()
    }

    /// Ends the run: whatever still waits never started.
    pub fn finish(mut self) -> RunResult {
        self.result.end_time = self
            .result
            .jobs
            .iter()
            .filter_map(|j| j.end)
            .fold(0.0, f64::max);
        if !self.queue.is_empty() || !self.running.is_empty() {
            self.result.end_time = self.result.end_time.max(self.now);
        }
        self.result
    }

    /// One event: arrivals, the policy's decisions, then time moves to the next event.
    /// Returns false when the run is over.
    pub fn step(&mut self, policy: &mut dyn Policy) -> bool {
        while let Some(job) = self.jobs.get(self.next_arrival) {
            if job.arrival > self.now + EPS {
                break;
            }
            self.queue.push(job.id);
            policy.arrived(job, self.now);
            self.next_arrival += 1;
        }
        let starts = policy.decide(self.now, &self.ctx());
        if !starts.is_empty() || !self.running.is_empty() {
            self.idle_ticks = 0;
        }
        for s in starts {
            self.start(s);
        }
        if self.done() || self.now >= self.horizon {
            return false;
        }
        let mut next = self.next_tick.min(self.horizon);
        if let Some(j) = self.jobs.get(self.next_arrival) {
            next = next.min(j.arrival);
        }
        if let Some(w) = policy.wake_at()
            && w > self.now + EPS
        {
            next = next.min(w);
        }
        let rates = self.rates();
        for (r, rate) in self.running.iter().zip(&rates) {
            if *rate > 0.0 {
                let left = self.duration(r.job) - r.progress;
                next = next.min(self.now + (left / rate).max(0.0));
            }
        }
        // Nothing runs, nothing will arrive, the policy started nothing and will not wake
        // up: the jobs still waiting can never start.
        if self.running.is_empty()
            && self.next_arrival >= self.jobs.len()
            && policy.wake_at().is_none_or(|w| w <= self.now + EPS)
            && !self.idle_ticks_allowed()
        {
            return false;
        }
        self.advance(next.max(self.now), rates, policy);
        true
    }

    /// A waiting queue with nothing running gets one sampling tick to change its mind (a
    /// policy that decides on observations), then the run is declared stuck.
    fn idle_ticks_allowed(&mut self) -> bool {
        self.idle_ticks += 1;
        self.idle_ticks <= 2
    }

    /// Each running process's rate.
    fn rates(&self) -> Vec<f64> {
        let mut counts = vec![0usize; self.slots.len()];
        for r in &self.running {
            if let Some(c) = counts.get_mut(r.slot) {
                *c += 1;
            }
        }
        self.running
            .iter()
            .map(|r| {
                let speed = self.slots.get(r.slot).map_or(0.0, |s| s.speed);
                let n = counts.get(r.slot).copied().unwrap_or(1);
                speed / self.scenario.contention.slowdown(n)
            })
            .collect()
    }

    /// Starts a process now (ignores orders for jobs not waiting or unknown devices).
    pub fn start(&mut self, s: Start) {
        let Some(pos) = self.queue.iter().position(|&j| j == s.job) else {
            return;
        };
        if s.slot >= self.slots.len() {
            return;
        }
        self.queue.remove(pos);
        let now = self.now;
        if let Some(r) = self.result.jobs.get_mut(s.job) {
            r.slot = Some(s.slot);
            r.start = Some(now);
        }
        self.running.push(Running {
            job: s.job,
            slot: s.slot,
            started: now,
            progress: 0.0,
            limit: s.limit,
            used: 0,
            samples: Vec::new(),
            corunners: Vec::new(),
        });
        self.note_corunners(s.slot);
    }

    fn duration(&self, job: usize) -> f64 {
        self.jobs
            .get(job)
            .map_or(0.0, |j| self.scenario.duration(j))
    }

    fn on_slot(&self, slot: usize) -> usize {
        self.running.iter().filter(|r| r.slot == slot).count()
    }

    fn note_corunners(&mut self, slot: usize) {
        let k = self.on_slot(slot).saturating_sub(1) as f64;
        let now = self.now;
        for r in self.running.iter_mut().filter(|r| r.slot == slot) {
            if r.corunners.last().is_none_or(|c| c.1 != k) {
                r.corunners.push((now - r.started, k));
            }
        }
    }

    fn advance(&mut self, to: f64, rates: Vec<f64>, policy: &mut dyn Policy) {
        let dt = to - self.now;
        if dt > 0.0 {
            for (r, rate) in self.running.iter_mut().zip(rates) {
                r.progress += rate * dt;
                self.result.memory_time += r.used as f64 * dt;
            }
        }
        self.now = to;
        // Completions.
        let mut i = 0;
        while i < self.running.len() {
            let r = &self.running[i];
            let d = self.duration(r.job);
            if r.progress >= d - 1e-6 * d.max(1.0) {
                let r = self.running.remove(i);
                self.end(r, End::Completed, None, policy);
            } else {
                i += 1;
            }
        }
        if self.now + EPS >= self.next_tick {
            self.check_memory(policy);
            self.next_tick += self.scenario.sample_s;
            if self.record.trace {
                let point = self
                    .running
                    .iter()
                    .map(|r| (r.job, r.slot, r.used))
                    .collect();
                self.result.trace.push((self.now, point));
            }
            policy.observed(self.now, &self.ctx());
        }
    }

    fn end(&mut self, r: Running, end: End, attempted: Option<u64>, policy: &mut dyn Policy) {
        let now = self.now;
        if let Some(j) = self.result.jobs.get_mut(r.job) {
            j.end = Some(now);
            j.outcome = Some(end);
        }
        self.note_corunners(r.slot);
        let e = Ended {
            job: r.job,
            slot: r.slot,
            started: r.started,
            ended: now,
            end,
            samples: r.samples,
            corunners: r.corunners,
            attempted,
        };
        policy.ended(&e, now);
    }

    fn check_memory(&mut self, policy: &mut dyn Policy) {
        let now = self.now;
        let mut fresh: Vec<(u64, i128)> = Vec::with_capacity(self.running.len());
        for r in &self.running {
            let m = self
                .jobs
                .get(r.job)
                .map_or(0, |j| self.scenario.memory(j, r.progress));
            fresh.push((m, m as i128 - r.used as i128));
        }
        // Over the MPS limit: that process fails.
        let mut victims: Vec<(usize, End, u64)> = Vec::new();
        for (i, r) in self.running.iter().enumerate() {
            let (m, delta) = fresh[i];
            if r.limit.is_some_and(|l| m > l) {
                victims.push((i, End::OomLimit, delta.max(0) as u64));
            }
        }
        // Over a device's capacity: the biggest allocator fails, until it fits.
        for (s, slot) in self.slots.iter().enumerate() {
            loop {
                let alive = |i: &usize| !victims.iter().any(|v| v.0 == *i);
                let idx: Vec<usize> = (0..self.running.len())
                    .filter(|&i| self.running[i].slot == s)
                    .filter(alive)
                    .collect();
                let total: u64 = idx.iter().map(|&i| fresh[i].0).sum::<u64>() + slot.unmanaged;
                if total <= slot.capacity {
                    break;
                }
                let Some(&v) = idx.iter().max_by(|&&a, &&b| {
                    fresh[a]
                        .1
                        .cmp(&fresh[b].1)
                        .then(self.running[a].started.total_cmp(&self.running[b].started))
                }) else {
                    break;
                };
                victims.push((v, End::OomDevice, fresh[v].1.max(0) as u64));
            }
        }
        for (i, r) in self.running.iter_mut().enumerate() {
            r.used = fresh[i].0;
            if self.record.samples {
                r.samples.push((now - r.started, r.used));
            }
        }
        victims.sort_by_key(|v| std::cmp::Reverse(v.0));
        for (i, end, attempted) in victims {
            let r = self.running.remove(i);
            self.end(r, end, Some(attempted), policy);
        }
    }
}
