//! The admission core's state machine, [`Admission`]: enqueue, cancel, observe, finished,
//! adopt, decide (with re-planning only when something changed, and the no-delay check for
//! requests that pass earlier ones), the queue as planned, and the figures for metrics.

use crate::answer::{Adopted, Decision, QueueEntry, RejectReason, RunningEntry, WaitReason};
use crate::config::{Config, ProfileSource};
use crate::learn::Outcome;
use crate::plan::{Planned, Planner};
use crate::shape::Shape;
use crate::state::{
    Device, DeviceState, Observation, Queued, Request, RequestId, RunningProc, State,
};
use std::collections::BTreeSet;

/// The admission core. See the crate documentation.
#[derive(Clone, Debug)]
pub struct Admission {
    config: Config,
    state: State,
    plan: Vec<(RequestId, Option<usize>, Option<f64>, WaitReason)>,
    /// What the last full plan was made from (see [`Admission::decide`]).
    planned_from: Option<Snapshot>,
}

/// Steps of `horizon_step_s` after which a plan is remade even though nothing changed (a
/// backstop: between events the plan's own simulation already foresaw how windows move).
const RESYNC_STEPS: f64 = 120.0;

/// The inputs of the last full plan that matter for whether to plan again.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    at: f64,
    queue: Vec<RequestId>,
    running: Vec<(RequestId, u64)>,
    devices: Vec<(bool, u64, Vec<bool>)>,
}

impl Admission {
    pub fn new(config: Config, devices: Vec<Device>) -> Self {
        let config = config.sanitized();
        let mut devs: Vec<DeviceState> = Vec::new();
        for d in devices {
            if devs.iter().any(|x| x.device.id == d.id) {
                continue;
            }
            devs.push(DeviceState {
                device: d,
                used: None,
                unmanaged_live: 0,
                unmanaged_min: None,
                refuted: vec![false; config.stretch_bands],
            });
        }
        Admission {
            state: State {
                bands: config.stretch_bands,
                step: config.horizon_step_s,
                devices: devs,
                running: Vec::new(),
                queue: Vec::new(),
                now: f64::NEG_INFINITY,
            },
            config,
            plan: Vec::new(),
            planned_from: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn devices(&self) -> Vec<Device> {
        self.state
            .devices
            .iter()
            .map(|d| d.device.clone())
            .collect()
    }

    fn first_time(&mut self, now: f64) -> f64 {
        if !self.state.now.is_finite() && now.is_finite() {
            self.state.now = now;
        }
        if now.is_finite() {
            now.max(self.state.now)
        } else {
            self.state.now
        }
    }

    /// Queues a request (FIFO). Refuses unknown devices, duplicate ids, and declared peaks
    /// larger than every eligible device's capacity − reserve.
    pub fn enqueue(&mut self, req: Request, now: f64) -> Result<(), RejectReason> {
        let now = self.first_time(now);
        if req.workload.trim().is_empty() {
            return Err(RejectReason::Invalid("empty workload name".into()));
        }
        if req.declared_peak == Some(0) {
            return Err(RejectReason::Invalid("declared peak is 0".into()));
        }
        if self.state.queue.iter().any(|q| q.req.id == req.id)
            || self.state.running.iter().any(|p| p.id == req.id)
        {
            return Err(RejectReason::DuplicateId(req.id));
        }
        let eligible: Vec<usize> = match &req.device {
            Some(id) => vec![
                self.state
                    .device_index(id)
                    .ok_or_else(|| RejectReason::UnknownDevice(id.clone()))?,
            ],
            None => (0..self.state.devices.len()).collect(),
        };
        let largest_budget = eligible
            .iter()
            .map(|&d| self.state.total_budget(d, self.config.reserve))
            .max()
            .unwrap_or(0);
        let peak = req.declared_peak.unwrap_or(1);
        if peak > largest_budget {
            return Err(RejectReason::TooLarge {
                peak,
                largest_budget,
            });
        }
        self.state.advance(now, None);
        self.state.queue.push(Queued {
            req,
            arrived_at: now,
            hold: None,
            rolled: false,
        });
        Ok(())
    }

    /// Takes a request out of the queue (no effect if it is not queued).
    pub fn cancel(&mut self, id: RequestId) {
        self.state.queue.retain(|q| q.req.id != id);
        self.plan.retain(|p| p.0 != id);
    }

    /// Records live readings: device used memory (`None` makes the device inadmissible),
    /// unmanaged usage, and each admitted process's usage (its prediction never goes below it).
    pub fn observe(&mut self, obs: &Observation, now: f64) {
        let now = self.first_time(now);
        self.state.advance(now, None);
        self.state.observe(obs);
    }

    /// A process ended (or a queued request was abandoned).
    pub fn finished(&mut self, id: RequestId, outcome: Outcome, now: f64) {
        let now = self.first_time(now);
        self.state.advance(now, Some(id));
        if let Some(i) = self.state.running.iter().position(|p| p.id == id) {
            let p = self.state.running.remove(i);
            if outcome == Outcome::Completed {
                self.state.note_completion(&p);
            }
            self.state.reset_if_idle(p.device);
        } else {
            self.cancel(id);
        }
    }

    /// Takes over a process admitted before a restart. Its progress is unknown, so its window
    /// is widened to everything it could have done since `started_at` (no co-runner at the
    /// fastest, the current co-runners at the slowest).
    pub fn adopt(&mut self, p: Adopted, now: f64) -> Result<(), RejectReason> {
        let now = self.first_time(now);
        let d = self
            .state
            .device_index(&p.device)
            .ok_or_else(|| RejectReason::UnknownDevice(p.device.clone()))?;
        if self.state.running.iter().any(|r| r.id == p.id) {
            return Err(RejectReason::DuplicateId(p.id));
        }
        self.cancel(p.id);
        self.state.advance(now, None);
        let shape = Shape::from_basis(&p.basis);
        let elapsed = (now - p.started_at).max(0.0);
        let k = self.state.running.iter().filter(|r| r.device == d).count() as f64;
        let (lo, hi, pt) = if shape.is_finite() {
            let j = shape.jitter;
            (
                elapsed / ((1.0 + shape.a_max * k) * (1.0 + j)),
                (elapsed / (1.0 - j)).min(shape.duration),
                (elapsed / (1.0 + shape.a * k)).min(shape.duration),
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        let bands = self.state.bands;
        self.state.running.push(RunningProc {
            id: p.id,
            device: d,
            workload: p.workload,
            started_at: p.started_at,
            predicted_peak: p.basis.peak(),
            basis: p.basis,
            shape,
            memory_limit: p.memory_limit,
            live: 0,
            lo: vec![lo; bands],
            hi: vec![hi; bands],
            pt,
        });
        Ok(())
    }

    fn planner(&self, now: f64) -> Planner<'_> {
        Planner::new(&self.state, &self.config, now)
    }

    fn admit(&mut self, p: &Planned, now: f64) -> Option<Decision> {
        let d = p.device?;
        let basis = p.basis.clone()?;
        let shape = p.shape.clone()?;
        let i = self.state.queue.iter().position(|q| q.req.id == p.id)?;
        let q = self.state.queue.remove(i);
        self.state.reset_if_idle(d);
        let bands = self.state.bands;
        let predicted_peak = basis.peak();
        let device = self.state.devices.get(d)?.device.id.clone();
        self.state.running.push(RunningProc {
            id: p.id,
            device: d,
            workload: q.req.workload,
            started_at: now,
            basis,
            shape,
            predicted_peak,
            memory_limit: p.limit,
            live: 0,
            lo: vec![0.0; bands],
            hi: vec![0.0; bands],
            pt: 0.0,
        });
        Some(Decision::Admit {
            id: p.id,
            device,
            memory_limit: p.limit,
            predicted_peak,
        })
    }

    fn make_plan(&mut self, now: f64, profiles: &dyn ProfileSource, rollout: bool) -> Vec<Planned> {
        let (plan, effects) = self.planner(now).plan(profiles, rollout);
        for q in &mut self.state.queue {
            if effects.rolled.contains(&q.req.id) {
                q.rolled = true;
            }
            if let Some(&(_, h)) = effects.holds.iter().find(|(id, _)| *id == q.req.id) {
                q.hold = Some(h);
            }
        }
        plan
    }

    /// Admits, in queue order, every request that is safe to start now; a request may pass
    /// an earlier one only if that does not delay the earlier one's predicted start.
    ///
    /// A full plan is made when something changed since the last one: the queue, the
    /// running set or the stretch bands ruled out; a device reading appearing or
    /// disappearing; unmanaged usage moving by more than 0.5 % of the device; a process's
    /// live usage moving by more than 2 % of its predicted peak where it is above the least
    /// its envelope predicts for the rest of its life (the only place a live reading changes
    /// a prediction; a drop there is planned at once, a rise, which can only delay starts,
    /// at most every 10 × `horizon_step_s`); a planned start coming due; 10 ×
    /// `horizon_step_s` passing while a running process may have ended already (its windows
    /// tighten faster than the plan assumed); and, as a backstop, 120 × `horizon_step_s`
    /// passing. Otherwise the last plan's own simulation foresaw how the windows move, and
    /// `decide` returns at once. Skipping a plan never admits anything: every admission is
    /// checked by a full plan on the current state. (A changed [`ProfileSource`] alone is
    /// noticed at the next full plan.)
    pub fn decide(&mut self, now: f64, profiles: &dyn ProfileSource) -> Vec<Decision> {
        let now = self.first_time(now);
        self.state.advance(now, None);
        if self
            .planned_from
            .as_ref()
            .is_some_and(|s| !self.changed_since(s, now))
        {
            return Vec::new();
        }
        let out = self.decide_now(now, profiles);
        self.planned_from = Some(self.snapshot(now));
        out
    }

    fn snapshot(&self, now: f64) -> Snapshot {
        Snapshot {
            at: now,
            queue: self.state.queue.iter().map(|q| q.req.id).collect(),
            running: self.state.running.iter().map(|p| (p.id, p.live)).collect(),
            devices: self
                .state
                .devices
                .iter()
                .map(|d| (d.used.is_some(), d.unmanaged(), d.refuted.clone()))
                .collect(),
        }
    }

    fn changed_since(&self, s: &Snapshot, now: f64) -> bool {
        // Between events the running processes' progress windows move exactly as the last
        // plan simulated them, except while one may have ended already (the plan counted it
        // as a possible co-runner; time passing without its end report tightens the windows).
        let period = if self.state.running.iter().any(RunningProc::may_have_ended) {
            10.0
        } else {
            RESYNC_STEPS
        } * self.config.horizon_step_s;
        if now - s.at >= period {
            return true;
        }
        if self
            .plan
            .iter()
            .any(|p| p.3 != WaitReason::BehindEarlier && p.2.is_some_and(|t| t <= now + 1e-9))
            || s.queue.len() != self.state.queue.len()
            || s.running.len() != self.state.running.len()
            || s.devices.len() != self.state.devices.len()
        {
            return true;
        }
        if s.queue
            .iter()
            .zip(&self.state.queue)
            .any(|(a, q)| *a != q.req.id)
        {
            return true;
        }
        let moved = |a: u64, b: u64, scale: u64| a.abs_diff(b) as f64 > scale as f64;
        // A process's live usage matters only where it lifts the prediction above the
        // envelope (a ramp inside its envelope changes nothing the plan used). A drop there
        // may let a request start sooner: plan at once. A rise can only push starts later,
        // and every start is re-checked when it comes due, so it just refreshes the
        // predicted starts every 10 steps.
        let refresh = now - s.at >= 10.0 * self.config.horizon_step_s;
        let lifts = |old: u64, p: &RunningProc| {
            let binds = p.floor_binds_above();
            moved(old, p.live, p.predicted_peak / 50)
                && ((old > binds && p.live < old) || (refresh && p.live > binds))
        };
        if s.running
            .iter()
            .zip(&self.state.running)
            .any(|(&(id, live), p)| id != p.id || lifts(live, p))
        {
            return true;
        }
        s.devices
            .iter()
            .zip(&self.state.devices)
            .any(|(&(known, u, ref refuted), d)| {
                known != d.used.is_some()
                    || moved(u, d.unmanaged(), d.device.capacity / 200)
                    || *refuted != d.refuted
            })
    }

    fn decide_now(&mut self, now: f64, profiles: &dyn ProfileSource) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut blocked: BTreeSet<RequestId> = BTreeSet::new();
        loop {
            let plan = self.make_plan(now, profiles, true);
            let mut admitted = false;
            for (pos, p) in plan.iter().enumerate() {
                if p.start.is_none_or(|s| s > now) || blocked.contains(&p.id) {
                    continue;
                }
                if pos > 0 {
                    let mut trial = self.clone();
                    if trial.admit(p, now).is_none() {
                        continue;
                    }
                    let (after, _) = trial.planner(now).plan(profiles, false);
                    let delays = plan[..pos].iter().any(|e| {
                        let new = after.iter().find(|a| a.id == e.id).and_then(|a| a.start);
                        later(new, e.start)
                    });
                    if delays {
                        blocked.insert(p.id);
                        continue;
                    }
                }
                if let Some(dec) = self.admit(p, now) {
                    out.push(dec);
                    admitted = true;
                    break;
                }
            }
            if !admitted {
                self.plan = plan
                    .iter()
                    .map(|p| {
                        let reason = if blocked.contains(&p.id) {
                            WaitReason::BehindEarlier
                        } else {
                            p.reason
                        };
                        (p.id, p.device, p.start, reason)
                    })
                    .collect();
                break;
            }
        }
        out
    }

    /// What `decide` would plan now, without admitting anything or recording holds.
    pub fn preview(&self, now: f64, profiles: &dyn ProfileSource) -> Vec<QueueEntry> {
        let mut copy = self.clone();
        let now = copy.first_time(now);
        copy.state.advance(now, None);
        let plan = copy.make_plan(now, profiles, true);
        copy.plan = plan
            .iter()
            .map(|p| (p.id, p.device, p.start, p.reason))
            .collect();
        copy.queue()
    }

    /// The queue in order, with each request's planned device, predicted start and reason as
    /// of the last `decide`.
    pub fn queue(&self) -> Vec<QueueEntry> {
        self.state
            .queue
            .iter()
            .enumerate()
            .map(|(position, q)| {
                let planned = self.plan.iter().find(|p| p.0 == q.req.id);
                QueueEntry {
                    id: q.req.id,
                    workload: q.req.workload.clone(),
                    position,
                    arrived_at: q.arrived_at,
                    device: planned
                        .and_then(|p| p.1)
                        .and_then(|d| self.state.devices.get(d))
                        .map(|d| d.device.id.clone()),
                    predicted_start: planned.and_then(|p| p.2),
                    reason: planned.map_or(WaitReason::Pending, |p| p.3),
                }
            })
            .collect()
    }

    /// When the next `decide` could admit something without any other event: the earliest
    /// predicted start after the last decision.
    pub fn next_decision_at(&self) -> Option<f64> {
        let now = self.state.now;
        self.plan
            .iter()
            .filter_map(|p| p.2)
            .filter(|&s| s > now)
            .min_by(f64::total_cmp)
    }

    /// The admitted processes.
    pub fn running(&self) -> Vec<RunningEntry> {
        self.state
            .running
            .iter()
            .map(|p| RunningEntry {
                id: p.id,
                device: self
                    .state
                    .devices
                    .get(p.device)
                    .map(|d| d.device.id.clone())
                    .unwrap_or_default(),
                workload: p.workload.clone(),
                started_at: p.started_at,
                basis: p.basis.clone(),
                predicted_peak: p.predicted_peak,
                memory_limit: p.memory_limit,
                live: p.live,
            })
            .collect()
    }

    /// Memory held for the running processes on `device` now: the sum of their current
    /// predictions (each at least its live usage).
    pub fn reserved(&self, device: &str) -> Option<u64> {
        let d = self.state.device_index(device)?;
        Some(self.planner(self.state.now).running_totals(d).0)
    }

    /// The largest predicted total of the running processes on `device` over their remaining
    /// lives (unmanaged usage not included).
    pub fn predicted_peak(&self, device: &str) -> Option<u64> {
        let d = self.state.device_index(device)?;
        Some(self.planner(self.state.now).running_totals(d).1)
    }

    /// Unmanaged usage on `device` as the policy counts it (live value plus growth so far).
    pub fn unmanaged(&self, device: &str) -> Option<u64> {
        let d = self.state.device_index(device)?;
        self.state.devices.get(d).map(DeviceState::unmanaged)
    }

    /// The last reading of `device`'s used memory (`None` when unknown).
    pub fn live_used(&self, device: &str) -> Option<u64> {
        let d = self.state.device_index(device)?;
        self.state.devices.get(d).and_then(|x| x.used)
    }

    /// Memory available to admitted processes on `device`: capacity − reserves − unmanaged.
    pub fn budget(&self, device: &str) -> Option<u64> {
        let d = self.state.device_index(device)?;
        self.state.free_budget(d, self.config.reserve)
    }
}

/// Whether start `a` is later than start `b` (`None` = never).
fn later(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x > y + 1e-9,
    }
}
