//! Planning the queue: for each request in FIFO order, the device and the earliest start on
//! the `horizon_step_s` grid at which the whole device timeline (running processes, requests
//! planned before it, and it) stays within budget in every stretch band; and the one-time
//! stagger search that may hold a request back so that its peak does not coincide with
//! others' (when that makes the requests behind it finish sooner).

use crate::answer::WaitReason;
use crate::config::{Config, ProfileSource};
use crate::shape::{Basis, Shape};
use crate::state::{Queued, RequestId, State};
use crate::timeline::{Lane, PointLane, point_ends, simulate, simulate_traced};
use std::cell::Cell;

/// One request's place in the plan.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub id: RequestId,
    pub device: Option<usize>,
    pub start: Option<f64>,
    pub reason: WaitReason,
    pub basis: Option<Basis>,
    pub shape: Option<Shape>,
    pub limit: u64,
}

/// What a plan decided besides start times: holds to record and requests whose stagger
/// search ran.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanEffects {
    pub holds: Vec<(RequestId, f64)>,
    pub rolled: Vec<RequestId>,
}

#[derive(Clone, Copy, Debug)]
struct Check {
    feasible: bool,
    settle: f64,
    peak_total: u64,
    now_total: u64,
}

pub(crate) struct Planner<'s> {
    state: &'s State,
    config: &'s Config,
    now: f64,
    planned: Vec<Vec<(Shape, f64)>>,
    last_failed: Cell<Option<usize>>,
}

fn fresh(shape: &Shape, start: f64) -> Lane<'_> {
    Lane {
        shape,
        start,
        floor: 0,
        lo: 0.0,
        hi: 0.0,
        pinned: false,
    }
}

/// Start times tried are `now` and multiples of the step after it.
fn grid_after(t: f64, g: f64) -> f64 {
    let mut u = (t / g).floor() * g + g;
    if u <= t {
        u += g;
    }
    u
}

impl<'s> Planner<'s> {
    pub fn new(state: &'s State, config: &'s Config, now: f64) -> Self {
        Planner {
            state,
            config,
            now,
            planned: vec![Vec::new(); state.devices.len()],
            last_failed: Cell::new(None),
        }
    }

    fn check(&self, d: usize, extra: &[(&Shape, f64)], stop: bool) -> Check {
        self.check_with(d, true, extra, stop)
    }

    /// [`Planner::check`], with or without the requests planned so far.
    fn check_with(
        &self,
        d: usize,
        with_planned: bool,
        extra: &[(&Shape, f64)],
        stop: bool,
    ) -> Check {
        let Some(budget) = self.state.free_budget(d, self.config.reserve) else {
            return Check {
                feasible: false,
                settle: f64::INFINITY,
                peak_total: 0,
                now_total: 0,
            };
        };
        let mut out = Check {
            feasible: true,
            settle: self.now,
            peak_total: 0,
            now_total: 0,
        };
        let mut bands = self.state.active_bands(d);
        // The band that failed last is the likeliest to fail again: try it first.
        if let Some(i) = bands.iter().position(|b| *b == self.last_failed.get()) {
            bands.swap(0, i);
        }
        for band in bands {
            let mut lanes: Vec<Lane<'_>> = self.state.running_lanes(d, band);
            if with_planned {
                let planned = self.planned.get(d).map(Vec::as_slice).unwrap_or(&[]);
                lanes.extend(planned.iter().map(|(s, t)| fresh(s, *t)));
            }
            lanes.extend(extra.iter().map(|&(s, t)| fresh(s, t)));
            let sim = simulate(self.now, budget, &lanes, self.state.theta_of(band), stop);
            out.feasible &= sim.feasible;
            out.settle = out.settle.max(sim.settle);
            out.peak_total = out.peak_total.max(sim.peak_total);
            out.now_total = out.now_total.max(sim.now_total);
            if !sim.feasible {
                self.last_failed.set(band);
                if stop {
                    break;
                }
            }
        }
        out
    }

    fn fits(&self, d: usize, extra: &[(&Shape, f64)], shape: &Shape, t: f64) -> bool {
        let mut all: Vec<(&Shape, f64)> = extra.to_vec();
        all.push((shape, t));
        if !self.check(d, &all, true).feasible {
            return false;
        }
        // Starting now is a commitment; planned starts are not. A planned co-runner slows
        // the others in the prediction (and may keep their peaks apart), but it may never
        // come: what starts now must be safe beside the running processes alone.
        let planned_before = self.planned.get(d).is_some_and(|p| !p.is_empty());
        if t <= self.now && (planned_before || !extra.is_empty()) {
            return self.check_with(d, false, &[(shape, t)], true).feasible;
        }
        true
    }

    /// The earliest start (`now` or a grid time) at which `shape` fits on device `d`, given the
    /// plan so far plus `extra`; `None` if it never does.
    fn earliest(&self, d: usize, extra: &[(&Shape, f64)], shape: &Shape) -> Option<f64> {
        self.earliest_from(d, extra, shape, self.now)
    }

    /// Like [`Planner::earliest`], but not before `from`.
    ///
    /// A request can only start at a time when the room left by the others (in every band,
    /// before it has slowed anyone) holds its first step; only such times are tried: the
    /// moment room opens, then every `coarse` seconds within the opening, and the first hit is
    /// narrowed down on the grid.
    fn earliest_from(
        &self,
        d: usize,
        extra: &[(&Shape, f64)],
        shape: &Shape,
        from: f64,
    ) -> Option<f64> {
        let now = from.max(self.now);
        if self.fits(d, extra, shape, now) {
            return Some(now);
        }
        let budget = self.state.free_budget(d, self.config.reserve)?;
        let need = shape.segs.first().map_or(0, |s| s.1);
        let (room, settle) = self.room(d, extra, budget);
        if !settle.is_finite() {
            return None;
        }
        let g = self.config.horizon_step_s;
        let span = (settle - now).max(0.0);
        let coarse = ((span / 16.0 / g).ceil().max(8.0)) * g;
        let opens = |t: f64| {
            let i = room.partition_point(|r| r.0 <= t).saturating_sub(1);
            room.get(i).is_none_or(|r| r.1 >= need)
        };
        let mut t = grid_after(now, g);
        let mut prev: Option<f64> = None;
        loop {
            if t > settle + g && !opens(t) {
                return None;
            }
            if !opens(t) {
                // Jump to where room opens next.
                let i = room.partition_point(|r| r.0 <= t);
                let next = room[i..].iter().find(|r| r.1 >= need).map(|r| r.0);
                match next {
                    Some(n) => {
                        t = grid_after(n - g * 1e-9, g).max(grid_after(t, g));
                        prev = None;
                        continue;
                    }
                    None => return None,
                }
            }
            if self.fits(d, extra, shape, t) {
                let Some(mut lo) = prev else {
                    return Some(t);
                };
                let mut hi = t;
                while hi - lo > g * 1.5 {
                    let mid = ((lo + hi) / 2.0 / g).round() * g;
                    if mid <= lo || mid >= hi {
                        break;
                    }
                    if self.fits(d, extra, shape, mid) {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                return Some(hi);
            }
            if t >= settle {
                return None;
            }
            prev = Some(t);
            t += coarse;
        }
    }

    /// Room left on device `d` (budget − the largest predicted total over the bands) as a
    /// step function, and when the timeline settles.
    fn room(&self, d: usize, extra: &[(&Shape, f64)], budget: u64) -> (Vec<(f64, u64)>, f64) {
        let mut traces: Vec<Vec<(f64, u64)>> = Vec::new();
        let mut settle = self.now;
        for band in self.state.active_bands(d) {
            let mut lanes: Vec<Lane<'_>> = self.state.running_lanes(d, band);
            let planned = self.planned.get(d).map(Vec::as_slice).unwrap_or(&[]);
            lanes.extend(planned.iter().map(|(s, t)| fresh(s, *t)));
            lanes.extend(extra.iter().map(|&(s, t)| fresh(s, t)));
            let mut trace = Vec::new();
            let sim = simulate_traced(self.now, &lanes, self.state.theta_of(band), &mut trace);
            settle = settle.max(sim.settle);
            traces.push(trace);
        }
        let mut times: Vec<f64> = traces.iter().flatten().map(|p| p.0).collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        let room = times
            .into_iter()
            .map(|t| {
                let total = traces
                    .iter()
                    .map(|tr| {
                        let i = tr.partition_point(|p| p.0 <= t).saturating_sub(1);
                        tr.get(i).map_or(0, |p| p.1)
                    })
                    .max()
                    .unwrap_or(0);
                (t, budget.saturating_sub(total))
            })
            .collect();
        (room, settle)
    }

    fn point_makespan(&self, d: usize, extra: &[(&Shape, f64)]) -> f64 {
        let mut lanes: Vec<PointLane<'_>> = self.state.running_points(d);
        let planned = self.planned.get(d).map(Vec::as_slice).unwrap_or(&[]);
        lanes.extend(planned.iter().map(|(s, t)| PointLane {
            shape: s,
            start: *t,
            done: 0.0,
        }));
        lanes.extend(extra.iter().map(|&(s, t)| PointLane {
            shape: s,
            start: t,
            done: 0.0,
        }));
        point_ends(self.now, &lanes)
            .into_iter()
            .fold(self.now, f64::max)
    }

    /// Whether to hold back a request that fits now: tries starts up to `max_stagger` of its
    /// solo duration later and keeps the one that minimizes the predicted makespan of the
    /// device with the next `lookahead` queued requests placed greedily after it. Returns the
    /// chosen start.
    fn stagger(&self, d: usize, shape: &Shape, later: &[Shape]) -> f64 {
        let now = self.now;
        if later.is_empty() || !shape.is_finite() {
            return now;
        }
        // Score: predicted makespan with the later ones at their earliest starts, in order
        // (none before this one: holding a request back must not let later ones pass it).
        let score = |s: f64| -> (f64, bool) {
            let mut extra: Vec<(&Shape, f64)> = vec![(shape, s)];
            let mut waits = false;
            let mut from = s;
            for l in later {
                match self.earliest_from(d, &extra, l, from) {
                    Some(e) => {
                        waits |= e > now;
                        from = e;
                        extra.push((l, e));
                    }
                    None => return (f64::INFINITY, true),
                }
            }
            (self.point_makespan(d, &extra), waits)
        };
        let (base, waits) = score(now);
        if !waits {
            return now;
        }
        let g = self.config.horizon_step_s;
        let max_delay = self.config.max_stagger * shape.duration;
        let step = ((max_delay / 8.0 / g).round().max(1.0)) * g;
        let mut best = (base, now);
        let mut s = now;
        for _ in 0..8 {
            s = ((s + step) / g).round() * g;
            if s - now > max_delay + 1e-9 {
                break;
            }
            if !self.fits(d, &[], shape, s) {
                continue;
            }
            let (sc, _) = score(s);
            if sc < best.0 - (0.001 * best.0.abs()).max(1.0) {
                best = (sc, s);
            }
        }
        best.1
    }

    /// The reservation basis and the memory limit of `q` on device `d`.
    fn resolve(&self, q: &Queued, d: usize, profiles: &dyn ProfileSource) -> (Basis, u64) {
        let free = self.state.free_budget(d, self.config.reserve).unwrap_or(0);
        let profile = profiles.profile(&q.req.workload);
        match (q.req.declared_peak, profile) {
            (Some(peak), p) => (
                Basis::Declared {
                    peak,
                    profile: p.cloned(),
                },
                peak,
            ),
            // Only ever seen failing (an OOM at a provisional limit): its next run gets all
            // the room the device has, once, so that it can complete and be learned.
            (None, Some(p)) if p.is_lower_bound() => (Basis::Provisional { bytes: free }, free),
            (None, Some(p)) => {
                let peak = p.peak();
                let limit = ((peak as f64) * (1.0 + self.config.margin)).ceil() as u64;
                (Basis::Profile(p.clone()), limit.min(free).max(peak))
            }
            (None, None) => {
                let bytes = profiles.largest_peak().map_or(free, |l| l.min(free));
                (Basis::Provisional { bytes }, bytes)
            }
        }
    }

    fn eligible(&self, q: &Queued) -> Vec<usize> {
        match &q.req.device {
            Some(id) => self.state.device_index(id).into_iter().collect(),
            None => (0..self.state.devices.len()).collect(),
        }
    }

    /// Plans the whole queue. With `rollout`, requests that fit now and were never staggered
    /// get the stagger search; the holds it sets are returned in the effects.
    pub fn plan(
        mut self,
        profiles: &dyn ProfileSource,
        rollout: bool,
    ) -> (Vec<Planned>, PlanEffects) {
        let now = self.now;
        let mut out = Vec::with_capacity(self.state.queue.len());
        let mut effects = PlanEffects::default();
        for (pos, q) in self.state.queue.iter().enumerate() {
            if pos >= self.config.plan_depth {
                out.push(Planned {
                    id: q.req.id,
                    device: None,
                    start: None,
                    reason: WaitReason::Queued,
                    basis: None,
                    shape: None,
                    limit: 0,
                });
                continue;
            }
            let known: Vec<usize> = self
                .eligible(q)
                .into_iter()
                .filter(|&d| self.state.devices[d].used.is_some())
                .collect();
            let unknown_workload =
                q.req.declared_peak.is_none() && profiles.profile(&q.req.workload).is_none();
            let mut entry = Planned {
                id: q.req.id,
                device: None,
                start: None,
                reason: WaitReason::DeviceMemoryUnknown,
                basis: None,
                shape: None,
                limit: 0,
            };
            if known.is_empty() {
                out.push(entry);
                continue;
            }
            entry.reason = WaitReason::TooLarge;
            let mut best: Option<(f64, usize, Basis, Shape, u64)> = None;
            for d in known {
                let (basis, limit) = self.resolve(q, d, profiles);
                let total = self.state.total_budget(d, self.config.reserve);
                let free = self.state.free_budget(d, self.config.reserve).unwrap_or(0);
                if basis.peak() > total {
                    continue;
                }
                entry.reason = if unknown_workload {
                    WaitReason::UnknownWorkload
                } else {
                    WaitReason::Memory
                };
                // A provisional reservation of nothing means nothing is free: wait.
                let empty = matches!(basis, Basis::Provisional { bytes: 0 });
                if basis.peak() > free || empty {
                    continue;
                }
                let shape = Shape::from_basis(&basis);
                if let Some(e) = self.earliest(d, &[], &shape)
                    && best.as_ref().is_none_or(|b| e < b.0)
                {
                    best = Some((e, d, basis, shape, limit));
                }
            }
            let Some((e, d, basis, shape, limit)) = best else {
                out.push(entry);
                continue;
            };
            let mut start = e;
            if e <= now {
                entry.reason = WaitReason::Ready;
            }
            match q.hold {
                Some(h) if h > now && e < h && self.fits(d, &[], &shape, h) => {
                    start = h;
                    entry.reason = WaitReason::Stagger;
                }
                Some(_) => {}
                None if rollout && !q.rolled && e <= now && shape.is_finite() => {
                    effects.rolled.push(q.req.id);
                    let later: Vec<Shape> = self.state.queue[pos + 1..]
                        .iter()
                        .filter(|l| self.eligible(l).contains(&d))
                        .filter_map(|l| {
                            let (b, _) = self.resolve(l, d, profiles);
                            let free = self.state.free_budget(d, self.config.reserve)?;
                            let empty = matches!(b, Basis::Provisional { bytes: 0 });
                            (b.peak() <= free && !empty).then(|| Shape::from_basis(&b))
                        })
                        .take(self.config.stagger_lookahead)
                        .collect();
                    let s = self.stagger(d, &shape, &later);
                    if s > now {
                        effects.holds.push((q.req.id, s));
                        start = s;
                        entry.reason = WaitReason::Stagger;
                    }
                }
                None => {}
            }
            if let Some(p) = self.planned.get_mut(d) {
                p.push((shape.clone(), start));
            }
            entry.device = Some(d);
            entry.start = Some(start);
            entry.basis = Some(basis);
            entry.shape = Some(shape);
            entry.limit = limit;
            out.push(entry);
        }
        (out, effects)
    }

    /// Predicted total of the running set now and at its peak on device `d` (no budget).
    pub fn running_totals(&self, d: usize) -> (u64, u64) {
        let c = self.check_unbounded(d);
        (c.now_total, c.peak_total)
    }

    fn check_unbounded(&self, d: usize) -> Check {
        let mut out = Check {
            feasible: true,
            settle: self.now,
            peak_total: 0,
            now_total: 0,
        };
        for band in self.state.active_bands(d) {
            let lanes = self.state.running_lanes(d, band);
            let sim = simulate(self.now, u64::MAX, &lanes, self.state.theta_of(band), false);
            out.peak_total = out.peak_total.max(sim.peak_total);
            out.now_total = out.now_total.max(sim.now_total);
            out.settle = out.settle.max(sim.settle);
        }
        out
    }
}
