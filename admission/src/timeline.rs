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
}

fn reached(x: f64, boundary: f64) -> bool {
    x >= boundary - 1e-9 * boundary.abs().max(1.0)
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
        // Predicted total over [t, next event).
        let mut total: u64 = 0;
        for (l, s) in lanes.iter().zip(&st) {
            if !s.started || s.ended {
                continue;
            }
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
            total = total.saturating_add(v.max(l.floor));
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
            s.r_lo = 1.0 / ((1.0 + a_hi * k_max) * (1.0 + j));
            s.r_hi = 1.0 / ((1.0 + a_lo * k_min) * (1.0 - j));
            dt = dt.min(((l.shape.next_boundary(s.lo_seg) - s.lo) / s.r_lo).max(0.0));
            if !s.maybe_ended {
                dt = dt.min(((l.shape.next_boundary(s.hi_seg) - s.hi) / s.r_hi).max(0.0));
            }
        }
        if !dt.is_finite() {
            out.settle = t;
            return out;
        }
        t += dt;
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
            s.lo += s.r_lo * dt;
            loop {
                let b = l.shape.next_boundary(s.lo_seg);
                if !reached(s.lo, b) {
                    break;
                }
                if s.lo_seg + 1 >= l.shape.segs.len() {
                    s.lo = b;
                    s.ended = true;
                    out.latest_end[i] = t;
                    break;
                }
                s.lo_seg += 1;
                s.lo = s.lo.max(b);
            }
            if !s.maybe_ended {
                s.hi += s.r_hi * dt;
                loop {
                    let b = l.shape.next_boundary(s.hi_seg);
                    if !reached(s.hi, b) {
                        break;
                    }
                    if s.hi_seg + 1 >= l.shape.segs.len() {
                        s.hi = b;
                        s.maybe_ended = true;
                        break;
                    }
                    s.hi_seg += 1;
                    s.hi = s.hi.max(b);
                }
            }
            if s.hi < s.lo {
                s.hi = s.lo;
                s.hi_seg = s.lo_seg;
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
}
