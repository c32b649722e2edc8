//! The future-timeline check: an exact event-driven simulation of one device's predicted
//! memory, with each process's progress kept as an interval `[lo, hi]` of solo seconds.
//!
//! Between events every process progresses at a constant rate: the slowest edge `lo` with
//! the most co-runners that may still be alive and the slowest stretch
//! (`1/((1 + a_hi·k_max)(1 + jitter))`), the fastest edge `hi` with only the co-runners that
//! are surely alive and the fastest stretch (`1/((1 + a_lo·k_min)(1 − jitter))`). A process
//! is predicted at the envelope's maximum over `[lo, hi]` (never below its live usage) from
//! its start until `lo` reaches its duration. Events are starts and the moments an edge
//! crosses a step of its envelope, so the check is exact for the model; no time grid.
//!
//! The fast edge `hi` assumes that a process which may have ended (its own `hi` reached its
//! duration) no longer slows anyone; charging that process its memory at the same time pairs
//! two incompatible worlds. So while some processes may have ended (the set `M`), the total
//! is the larger of two sound bounds instead of their sum:
//! - *all of `M` still alive*: each process charged over `[lo, ha]`, where `ha` is a second
//!   fast edge that counts every possibly-alive co-runner. It is valid because every process
//!   that could be alive now was alive throughout (a start adds a sure co-runner), and it is
//!   reset to `hi` whenever a process surely ends (it may have ended at any earlier moment).
//! - *at least one of `M` ended*: the usual total less the smallest charge of a member of
//!   `M` (its memory is gone; the others are bounded by the usual charges).
//!
//! Open-ended and pinned processes are charged in both worlds and never count as co-runners
//! of `ha`.

use crate::shape::Shape;

/// One process on the timeline.
#[derive(Clone, Debug)]
pub(crate) struct Lane<'a> {
    pub shape: &'a Shape,
    /// Start time; at or before `now` for a running process.
    pub start: f64,
    /// Live usage: the prediction never goes below it.
    pub floor: u64,
    /// Progress interval at `now` (solo seconds); 0 for a process not started yet.
    pub lo: f64,
    pub hi: f64,
    /// Past every model's end but still running: held at `max(floor, peak)` until it ends.
    pub pinned: bool,
}

/// The result of one simulation.
#[derive(Clone, Debug)]
pub(crate) struct Sim {
    pub feasible: bool,
    /// Largest predicted total (before stopping, if it stopped at a violation).
    pub peak_total: u64,
    /// Predicted total at `now`.
    pub now_total: u64,
    /// From this time on nothing changes any more (all finite processes surely ended).
    pub settle: f64,
    /// Per lane: when it has surely ended (`lo` reached its duration); infinite if never.
    pub latest_end: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
struct St {
    lo: f64,
    hi: f64,
    lo_seg: usize,
    hi_seg: usize,
    started: bool,
    /// Surely ended.
    ended: bool,
    /// Possibly ended (or open-ended): not counted as a sure co-runner.
    maybe_ended: bool,
    r_lo: f64,
    r_hi: f64,
    /// Fast edge in the world where every process not surely ended is still alive (`ha`).
    ha: f64,
    ha_seg: usize,
    /// `ha` reached the duration.
    ha_end: bool,
    r_ha: f64,
}

fn reached(x: f64, boundary: f64) -> bool {
    x >= boundary - 1e-9 * boundary.abs().max(1.0)
}

/// Moves a progress edge `x` (in segment `seg` of `shape`) forward by `dx` solo seconds,
/// stepping over the segment boundaries it reaches. Returns whether it reached the end (it
/// then stays there).
fn advance(shape: &Shape, x: &mut f64, seg: &mut usize, dx: f64) -> bool {
    *x += dx;
    loop {
        let b = shape.next_boundary(*seg);
        if !reached(*x, b) {
            return false;
        }
        if *seg + 1 >= shape.segs.len() {
            *x = b;
            return true;
        }
        *seg += 1;
        *x = x.max(b);
    }
}

/// Simulates `lanes` from `now` under the stretch band `theta` (fractions of each shape's
/// per-co-runner range) and checks the predicted total against `budget` at every moment.
pub(crate) fn simulate(
    now: f64,
    budget: u64,
    lanes: &[Lane<'_>],
    theta: (f64, f64),
    stop_on_violation: bool,
) -> Sim {
    run(now, budget, lanes, theta, stop_on_violation, None)
}

/// Like [`simulate`] (never stopping early), also recording the predicted total as a step
/// function: `(from time, total)`.
pub(crate) fn simulate_traced(
    now: f64,
    lanes: &[Lane<'_>],
    theta: (f64, f64),
    trace: &mut Vec<(f64, u64)>,
) -> Sim {
    run(now, u64::MAX, lanes, theta, false, Some(trace))
}

fn run(
    now: f64,
    budget: u64,
    lanes: &[Lane<'_>],
    theta: (f64, f64),
    stop_on_violation: bool,
    mut trace: Option<&mut Vec<(f64, u64)>>,
) -> Sim {
    let mut st: Vec<St> = lanes
        .iter()
        .map(|l| {
            let d = l.shape.duration;
            let lo = l.lo.max(0.0);
            let hi = l.hi.max(lo);
            let open = l.pinned || !l.shape.is_finite();
            St {
                lo,
                hi,
                lo_seg: l.shape.seg_of(lo),
                hi_seg: l.shape.seg_of(hi),
                started: l.start <= now,
                ended: !open && lo >= d,
                maybe_ended: open || hi >= d,
                r_lo: 0.0,
                r_hi: 0.0,
                ha: hi,
                ha_seg: l.shape.seg_of(hi),
                ha_end: open || hi >= d,
                r_ha: 0.0,
            }
        })
        .collect();
    let mut out = Sim {
        feasible: true,
        peak_total: 0,
        now_total: 0,
        settle: now,
        latest_end: lanes
            .iter()
            .zip(&st)
            .map(|(l, s)| {
                if s.ended {
                    l.start.max(now)
                } else {
                    f64::INFINITY
                }
            })
            .collect(),
    };
    let seg_total: usize = lanes.iter().map(|l| l.shape.segs.len() + 2).sum();
    let limit = 4 * seg_total + 2 * lanes.len() + 16;
    let mut t = now;
    let mut first = true;
    for _ in 0..limit {
        // Predicted total over [t, next event): the usual total, and (while some process
        // may have ended) the two worlds of the module doc.
        let mut total: u64 = 0;
        let mut all_alive: u64 = 0;
        let mut least_maybe_ended: Option<u64> = None;
        for (l, s) in lanes.iter().zip(&st) {
            if !s.started || s.ended {
                continue;
            }
            let open = l.pinned || !l.shape.is_finite();
            let v = if l.pinned {
                l.shape.peak
            } else {
                let j = if s.maybe_ended {
                    l.shape.segs.len()
                } else {
                    s.hi_seg
                };
                l.shape.max_segs(s.lo_seg, j)
            };
            let v = v.max(l.floor);
            total = total.saturating_add(v);
            if open {
                all_alive = all_alive.saturating_add(v);
                continue;
            }
            let ja = if s.ha_end {
                l.shape.segs.len()
            } else {
                s.ha_seg
            };
            all_alive = all_alive.saturating_add(l.shape.max_segs(s.lo_seg, ja).max(l.floor));
            if s.maybe_ended {
                least_maybe_ended = Some(least_maybe_ended.map_or(v, |m| m.min(v)));
            }
        }
        if let Some(m) = least_maybe_ended {
            total = all_alive.max(total - m).min(total);
        }
        if first {
            out.now_total = total;
            first = false;
        }
        out.peak_total = out.peak_total.max(total);
        if let Some(tr) = trace.as_deref_mut()
            && tr.last().is_none_or(|l| l.1 != total)
        {
            tr.push((t, total));
        }
        if total > budget {
            out.feasible = false;
            if stop_on_violation {
                return out;
            }
        }
        // Rates and the next event.
        let possible = st.iter().filter(|s| s.started && !s.ended).count();
        let sure = st
            .iter()
            .filter(|s| s.started && !s.ended && !s.maybe_ended)
            .count();
        let finite_alive = lanes
            .iter()
            .zip(&st)
            .filter(|(l, s)| s.started && !s.ended && !l.pinned && l.shape.is_finite())
            .count();
        let mut dt = f64::INFINITY;
        for (l, s) in lanes.iter().zip(st.iter_mut()) {
            if !s.started {
                dt = dt.min(l.start - t);
                continue;
            }
            if s.ended || l.pinned || !l.shape.is_finite() {
                continue;
            }
            let k_max = possible.saturating_sub(1) as f64;
            let k_min = sure.saturating_sub(usize::from(!s.maybe_ended)) as f64;
            let (a_lo, a_hi) = l.shape.band(theta.0, theta.1);
            let j = l.shape.jitter;
            let k_alive = finite_alive.saturating_sub(1) as f64;
            s.r_lo = 1.0 / ((1.0 + a_hi * k_max) * (1.0 + j));
            s.r_hi = 1.0 / ((1.0 + a_lo * k_min) * (1.0 - j));
            s.r_ha = 1.0 / ((1.0 + a_lo * k_alive) * (1.0 - j));
            dt = dt.min(((l.shape.next_boundary(s.lo_seg) - s.lo) / s.r_lo).max(0.0));
            if !s.maybe_ended {
                dt = dt.min(((l.shape.next_boundary(s.hi_seg) - s.hi) / s.r_hi).max(0.0));
            }
            if !s.ha_end {
                dt = dt.min(((l.shape.next_boundary(s.ha_seg) - s.ha) / s.r_ha).max(0.0));
            }
        }
        if !dt.is_finite() {
            out.settle = t;
            return out;
        }
        t += dt;
        let mut surely_ended = false;
        for (i, (l, s)) in lanes.iter().zip(st.iter_mut()).enumerate() {
            if !s.started {
                if reached(t, l.start) {
                    s.started = true;
                }
                continue;
            }
            if s.ended || l.pinned || !l.shape.is_finite() {
                continue;
            }
            if advance(l.shape, &mut s.lo, &mut s.lo_seg, s.r_lo * dt) {
                s.ended = true;
                surely_ended = true;
                out.latest_end[i] = t;
            }
            if !s.maybe_ended && advance(l.shape, &mut s.hi, &mut s.hi_seg, s.r_hi * dt) {
                s.maybe_ended = true;
            }
            if s.hi < s.lo {
                s.hi = s.lo;
                s.hi_seg = s.lo_seg;
            }
            if !s.ha_end && advance(l.shape, &mut s.ha, &mut s.ha_seg, s.r_ha * dt) {
                s.ha_end = true;
            }
            if s.ha < s.lo {
                s.ha = s.lo;
                s.ha_seg = s.lo_seg;
            }
        }
        // A process surely ended: it may have ended at any moment before, so the all-alive
        // edge starts again from the usual fast edge.
        if surely_ended {
            for s in &mut st {
                s.ha = s.hi;
                s.ha_seg = s.hi_seg;
                s.ha_end = s.maybe_ended;
            }
        }
    }
    // Did not settle within the event budget: refuse rather than guess.
    out.feasible = false;
    out.settle = t;
    out
}

/// One process for the point estimate.
#[derive(Clone, Debug)]
pub(crate) struct PointLane<'a> {
    pub shape: &'a Shape,
    pub start: f64,
    /// Solo seconds done at `now`.
    pub done: f64,
}

/// Predicted end times with the central stretch and no jitter (infinite for open-ended).
pub(crate) fn point_ends(now: f64, lanes: &[PointLane<'_>]) -> Vec<f64> {
    let n = lanes.len();
    let mut done: Vec<f64> = lanes.iter().map(|l| l.done.max(0.0)).collect();
    let mut started: Vec<bool> = lanes.iter().map(|l| l.start <= now).collect();
    let mut end: Vec<f64> = vec![f64::INFINITY; n];
    let mut ended: Vec<bool> = vec![false; n];
    for i in 0..n {
        if lanes[i].shape.is_finite() && done[i] >= lanes[i].shape.duration {
            ended[i] = true;
            end[i] = lanes[i].start.max(now);
        }
    }
    let mut t = now;
    for _ in 0..(4 * n + 8) {
        let alive = (0..n).filter(|&i| started[i] && !ended[i]).count();
        let k = alive.saturating_sub(1) as f64;
        let mut dt = f64::INFINITY;
        for i in 0..n {
            let l = &lanes[i];
            if !started[i] {
                dt = dt.min(l.start - t);
            } else if !ended[i] && l.shape.is_finite() {
                let rate = 1.0 / (1.0 + l.shape.a * k);
                dt = dt.min((l.shape.duration - done[i]) / rate);
            }
        }
        if !dt.is_finite() {
            break;
        }
        let dt = dt.max(0.0);
        t += dt;
        for i in 0..n {
            let l = &lanes[i];
            if !started[i] {
                if reached(t, l.start) {
                    started[i] = true;
                }
            } else if !ended[i] && l.shape.is_finite() {
                done[i] += dt / (1.0 + l.shape.a * k);
                if reached(done[i], l.shape.duration) {
                    ended[i] = true;
                    end[i] = t;
                }
            }
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn ti2v() -> Shape {
        Shape {
            segs: vec![(0.0, 21 * G), (211.0, 33 * G)],
            duration: 242.0,
            a: 0.69,
            a_min: 0.69,
            a_max: 0.69,
            jitter: 0.0,
            peak: 33 * G,
        }
    }

    fn lane(s: &Shape, start: f64) -> Lane<'_> {
        Lane {
            shape: s,
            start,
            floor: 0,
            lo: 0.0,
            hi: 0.0,
            pinned: false,
        }
    }

    #[test]
    fn single_process_ends_at_duration() {
        let s = ti2v();
        let r = simulate(0.0, 40 * G, &[lane(&s, 0.0)], (0.0, 1.0), false);
        assert!(r.feasible);
        assert_eq!(r.peak_total, 33 * G);
        assert!((r.latest_end[0] - 242.0).abs() < 1e-6);
        assert!((r.settle - 242.0).abs() < 1e-6);
    }

    #[test]
    fn two_together_stretch() {
        let s = ti2v();
        let lanes = [lane(&s, 0.0), lane(&s, 0.0)];
        let r = simulate(0.0, 80 * G, &lanes, (0.0, 1.0), false);
        assert!(r.feasible);
        assert_eq!(r.peak_total, 66 * G);
        assert!((r.latest_end[0] - 242.0 * 1.69).abs() < 1e-6);
        let r = simulate(0.0, 60 * G, &lanes, (0.0, 1.0), true);
        assert!(!r.feasible);
    }

    #[test]
    fn staggered_start_and_point_ends() {
        let s = ti2v();
        let lanes = [lane(&s, 0.0), lane(&s, 60.0), lane(&s, 120.0)];
        let r = simulate(0.0, 79 * G, &lanes, (0.0, 1.0), false);
        assert!(r.feasible, "{r:?}");
        let pl: Vec<PointLane<'_>> = lanes
            .iter()
            .map(|l| PointLane {
                shape: l.shape,
                start: l.start,
                done: 0.0,
            })
            .collect();
        let ends = point_ends(0.0, &pl);
        assert!((ends[2] - 605.6).abs() < 1.0, "{ends:?}");
        for (a, b) in ends.iter().zip(&r.latest_end) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn window_covers_uncertainty() {
        let mut s = ti2v();
        s.jitter = 0.05;
        // Solo, 205 s in: the fastest run may be in the peak already.
        let l = Lane {
            lo: 205.0 / 1.05,
            hi: 205.0 / 0.95,
            ..lane(&s, -205.0)
        };
        let r = simulate(0.0, 100 * G, &[l], (0.0, 1.0), false);
        assert_eq!(r.now_total, 33 * G);
    }

    #[test]
    fn open_ended_and_floor() {
        let s = ti2v();
        let f = Shape::flat(10 * G);
        let mut l0 = lane(&s, 0.0);
        l0.floor = 40 * G;
        let r = simulate(0.0, 100 * G, &[l0, lane(&f, 0.0)], (0.0, 1.0), false);
        assert_eq!(r.peak_total, 50 * G);
        assert!(r.latest_end[1].is_infinite());
        assert!(r.settle.is_finite());
    }

    /// The seeds' case: job 1 has a lead, jobs 2 and 3 start now. With job 1 still alive,
    /// jobs 2 and 3 are slowed by it; once it may have ended its memory may be gone. Taking
    /// the larger of the two worlds (not their union) admits a lead that the union refused,
    /// and still refuses one at which the peaks can meet.
    #[test]
    fn a_co_runner_that_may_have_ended_is_not_both_gone_and_there() {
        let mut s = ti2v();
        s.jitter = 0.02;
        s.a_min = 0.59;
        s.a_max = 0.79;
        let budget = 79 * G;
        let check = |lead: f64| {
            let first = Lane {
                lo: lead,
                hi: lead,
                ..lane(&s, -lead)
            };
            let lanes = [first, lane(&s, 0.0), lane(&s, 0.0)];
            simulate(0.0, budget, &lanes, (0.75, 1.0), false)
        };
        // Lead 50 s, all three alive: job 1 at its slowest (0.79, + 2 %) ends at 505 s, jobs
        // 2 and 3 at their fastest beside it (0.74, − 2 %) peak from 513 s. The union of the
        // worlds refused this: job 1 may have ended from 467 s (its fast edge), after which
        // the others' fast edges ran with one co-runner and reached their peaks at 499 s,
        // while job 1 was still charged its peak.
        let r = check(50.0);
        assert!(r.feasible, "{r:?}");
        assert_eq!(r.peak_total, 33 * G + 2 * 21 * G);
        // Lead 40 s: the peaks can meet in the world where all three are alive.
        let r = check(40.0);
        assert!(!r.feasible, "{r:?}");
    }

    /// A small deterministic generator (SplitMix64) for the randomized check below.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }
    }

    /// The largest total of one concrete world, simulated exactly: every process at its own
    /// fixed speed factor, the device's common contention fraction `theta`, starts and ends
    /// changing everyone's co-runner count.
    fn concrete_worst(
        lanes: &[Lane<'_>],
        done0: &[f64],
        theta: f64,
        eps: &[f64],
        trace: &[(f64, u64)],
    ) -> Option<(f64, u64, u64)> {
        // The prediction at every instant of [from, to) (it is a step function).
        let least_over = |from: f64, to: f64| -> u64 {
            let i = trace.partition_point(|p| p.0 <= from).saturating_sub(1);
            trace[i..]
                .iter()
                .take_while(|p| p.0 < to)
                .map(|p| p.1)
                .chain(trace.get(i).map(|p| p.1))
                .min()
                .unwrap_or(0)
        };
        let n = lanes.len();
        let mut done = done0.to_vec();
        let mut t = 0.0f64;
        for _ in 0..10_000 {
            let alive: Vec<bool> = (0..n)
                .map(|i| lanes[i].start <= t + 1e-9 && done[i] < lanes[i].shape.duration - 1e-9)
                .collect();
            let total: u64 = (0..n)
                .filter(|&i| alive[i])
                .map(|i| {
                    let sh = lanes[i].shape;
                    sh.segs[sh.seg_of(done[i])].1.max(lanes[i].floor)
                })
                .sum();
            let k = alive.iter().filter(|a| **a).count().saturating_sub(1) as f64;
            let mut dt = f64::INFINITY;
            let mut rate = vec![0.0; n];
            for i in 0..n {
                let sh = lanes[i].shape;
                if !alive[i] {
                    if lanes[i].start > t + 1e-9 {
                        dt = dt.min(lanes[i].start - t);
                    }
                    continue;
                }
                let a = sh.a_min + theta * (sh.a_max - sh.a_min);
                rate[i] = 1.0 / ((1.0 + a * k) * (1.0 + eps[i]));
                dt = dt.min((sh.next_boundary(sh.seg_of(done[i])) - done[i]) / rate[i]);
            }
            // Compare inside the interval, away from its ends: both sides step at the same
            // instants when the bound is tight.
            let end = if dt.is_finite() { t + dt } else { t + 1.0 };
            let pad = 1e-6 * (end - t).max(1.0);
            if end - t > 2.0 * pad {
                let bound = least_over(t + pad, end - pad);
                if total > bound {
                    return Some((t, total, bound));
                }
            }
            if !dt.is_finite() {
                break;
            }
            let dt = dt.max(1e-9);
            for i in 0..n {
                if alive[i] {
                    done[i] += rate[i] * dt;
                    let b = lanes[i]
                        .shape
                        .next_boundary(lanes[i].shape.seg_of(done[i] - 1e-9));
                    if (done[i] - b).abs() < 1e-7 {
                        done[i] = b;
                    }
                }
            }
            t += dt;
        }
        None
    }

    /// Soundness of the two-world bound: in random cases (2–4 processes, steps up and down,
    /// some running with a progress window, some starting later), no concrete world inside
    /// the model (a common contention fraction in the band, each process at its own speed
    /// within ± jitter, started anywhere in its window) is above the prediction at any moment.
    #[test]
    fn no_world_inside_the_model_exceeds_the_prediction() {
        let mut rng = Rng(7);
        for case in 0..2000 {
            let n = 2 + (rng.next() % 3) as usize;
            let shapes: Vec<Shape> = (0..n)
                .map(|_| {
                    let duration = rng.range(40.0, 300.0);
                    let steps = 1 + (rng.next() % 4) as usize;
                    let mut segs = vec![(0.0, (rng.range(1.0, 30.0) * G as f64) as u64)];
                    for _ in 1..steps {
                        let at = rng.range(segs.last().map_or(0.0, |x| x.0) + 1.0, duration);
                        if at < duration - 0.5 {
                            segs.push((at, (rng.range(1.0, 40.0) * G as f64) as u64));
                        }
                    }
                    let a = rng.range(0.2, 0.9);
                    let spread = rng.range(0.0, 0.2);
                    Shape {
                        peak: segs.iter().map(|x| x.1).max().unwrap_or(0),
                        segs,
                        duration,
                        a,
                        a_min: (a - spread).max(0.0),
                        a_max: a + spread,
                        jitter: rng.range(0.0, 0.06),
                    }
                })
                .collect();
            let mut lanes = Vec::new();
            let mut done0 = Vec::new();
            for sh in &shapes {
                if rng.next().is_multiple_of(2) {
                    // Running: a window around its true progress.
                    let p = rng.range(0.0, sh.duration * 0.95);
                    let (lo, hi) = (
                        p * rng.range(0.9, 1.0),
                        (p * rng.range(1.0, 1.1)).min(sh.duration),
                    );
                    lanes.push(Lane {
                        shape: sh,
                        start: -p,
                        floor: 0,
                        lo,
                        hi,
                        pinned: false,
                    });
                    done0.push(rng.range(lo, hi));
                } else {
                    lanes.push(lane(sh, rng.range(0.0, 60.0)));
                    done0.push(0.0);
                }
            }
            let bands = [
                (0.0, 0.25),
                (0.25, 0.5),
                (0.5, 0.75),
                (0.75, 1.0),
                (0.0, 1.0),
            ];
            let band = bands[(rng.next() % bands.len() as u64) as usize];
            let mut trace = Vec::new();
            simulate_traced(0.0, &lanes, band, &mut trace);
            for w in 0..12 {
                let theta = match w {
                    0 => band.0,
                    1 => band.1,
                    _ => rng.range(band.0, band.1),
                };
                let eps: Vec<f64> = lanes
                    .iter()
                    .map(|l| {
                        let j = l.shape.jitter;
                        match rng.next() % 3 {
                            0 => -j,
                            1 => j,
                            _ => rng.range(-j, j),
                        }
                    })
                    .collect();
                let over = concrete_worst(&lanes, &done0, theta, &eps, &trace);
                assert!(
                    over.is_none(),
                    "case {case}, world {w}: (time, world, predicted) {over:?}\n{lanes:#?}\ndone {done0:?} theta {theta} eps {eps:?}"
                );
            }
        }
    }
}
