//! The admission state: devices and what was last observed on them, the running set (each
//! process with its reservation basis and its progress interval per stretch band), the FIFO
//! queue, and how the state moves with time and observations.

use crate::shape::{Basis, Shape};
use crate::timeline::{Lane, PointLane};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies a request and, once admitted, its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A GPU or MIG instance the sidecar manages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// GPU or MIG UUID.
    pub id: String,
    /// Total memory, bytes.
    pub capacity: u64,
    /// Bytes never handed out on this device (added to [`crate::Config::reserve`]).
    #[serde(default)]
    pub reserve: u64,
}

/// A request to start one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub workload: String,
    /// The peak the requester declares, honoured as a flat reservation.
    #[serde(default)]
    pub declared_peak: Option<u64>,
    /// Only this device (GPU or MIG UUID); any managed device when `None`.
    #[serde(default)]
    pub device: Option<String>,
}

/// One sampling round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub devices: Vec<DeviceReading>,
    pub processes: Vec<ProcessReading>,
}

/// What a device reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReading {
    pub device: String,
    /// Memory used on the device; `None` when it could not be read (the device is then not
    /// admissible until it can).
    pub used: Option<u64>,
    /// Memory of processes the sidecar did not start; derived as `used − Σ admitted
    /// processes' usage` when `None`.
    #[serde(default)]
    pub unmanaged: Option<u64>,
}

/// What one admitted process uses now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReading {
    pub id: RequestId,
    pub used: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct DeviceState {
    pub device: Device,
    /// Last reading of the device's used memory.
    pub used: Option<u64>,
    pub unmanaged_live: u64,
    pub unmanaged_min: Option<u64>,
    /// Stretch bands observations have ruled out on this device (reset when it goes idle).
    pub refuted: Vec<bool>,
}

impl DeviceState {
    /// Unmanaged usage as predicted: the live value plus its growth so far.
    pub fn unmanaged(&self) -> u64 {
        let growth = self
            .unmanaged_live
            .saturating_sub(self.unmanaged_min.unwrap_or(self.unmanaged_live));
        self.unmanaged_live.saturating_add(growth)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RunningProc {
    pub id: RequestId,
    pub device: usize,
    pub workload: String,
    pub started_at: f64,
    pub basis: Basis,
    pub shape: Shape,
    pub predicted_peak: u64,
    pub memory_limit: u64,
    pub live: u64,
    /// Progress interval per stretch band, solo seconds.
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Point estimate of progress (central stretch).
    pub pt: f64,
}

impl RunningProc {
    /// Whether the fastest stretch of some band says it may have ended by now.
    pub fn may_have_ended(&self) -> bool {
        self.shape.is_finite() && self.hi.iter().any(|&h| h >= self.shape.duration)
    }

    /// The least the prediction can be for this process at any moment of its remaining
    /// life: the envelope's minimum from its slowest progress edge on. A live reading at or
    /// below this never raises a prediction (the floor `max(envelope, live)` does not bind),
    /// so its moves cannot change a plan.
    pub fn floor_binds_above(&self) -> u64 {
        if self.shape.is_finite() && self.lo.iter().any(|&lo| lo >= self.shape.duration) {
            // Overdue: the lane is held near its end or pinned at its peak.
            return self.shape.segs.last().map_or(0, |s| s.1);
        }
        let lo = self.lo.iter().copied().fold(f64::INFINITY, f64::min);
        let from = if lo.is_finite() {
            self.shape.seg_of(lo)
        } else {
            0
        };
        self.shape
            .segs
            .get(from..)
            .and_then(|s| s.iter().map(|x| x.1).min())
            .unwrap_or(0)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub req: Request,
    pub arrived_at: f64,
    /// Held back until then so that peaks do not coincide (decided once).
    pub hold: Option<f64>,
    /// Whether the stagger search already ran for it.
    pub rolled: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct State {
    pub bands: usize,
    pub step: f64,
    pub devices: Vec<DeviceState>,
    pub running: Vec<RunningProc>,
    pub queue: Vec<Queued>,
    pub now: f64,
}

impl State {
    pub fn device_index(&self, id: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.device.id == id)
    }

    /// Band `b`'s range as fractions of each shape's per-co-runner range.
    pub fn theta(&self, b: usize) -> (f64, f64) {
        let k = self.bands.max(1) as f64;
        (b as f64 / k, (b + 1) as f64 / k)
    }

    /// How far past its slowest predicted end a process may run before its band is ruled out
    /// (absorbs late end reports), in solo seconds.
    pub fn tolerance(&self, duration: f64) -> f64 {
        0.02 * duration + 2.0 * self.step
    }

    /// Moves time forward to `now`, integrating each running process's progress interval with
    /// its actual co-runner count. Time never goes back: an earlier `now` is ignored.
    pub fn advance(&mut self, now: f64, finishing: Option<RequestId>) {
        let dt = now - self.now;
        if !(dt > 0.0 && dt.is_finite()) {
            return;
        }
        let mut per_device = vec![0usize; self.devices.len()];
        for p in &self.running {
            if let Some(c) = per_device.get_mut(p.device) {
                *c += 1;
            }
        }
        let thetas: Vec<(f64, f64)> = (0..self.bands).map(|b| self.theta(b)).collect();
        for p in &mut self.running {
            if !p.shape.is_finite() {
                continue;
            }
            let k = per_device.get(p.device).map_or(0, |c| c.saturating_sub(1)) as f64;
            let j = p.shape.jitter;
            for (b, th) in thetas.iter().enumerate() {
                let (a_lo, a_hi) = p.shape.band(th.0, th.1);
                if let Some(lo) = p.lo.get_mut(b) {
                    *lo += dt / ((1.0 + a_hi * k) * (1.0 + j));
                }
                if let Some(hi) = p.hi.get_mut(b) {
                    *hi = (*hi + dt / ((1.0 + a_lo * k) * (1.0 - j))).min(p.shape.duration);
                }
            }
            p.pt = (p.pt + dt / (1.0 + p.shape.a * k)).min(p.shape.duration);
        }
        self.now = now;
        // A process still running past a band's slowest end rules that band out.
        for p in &self.running {
            if Some(p.id) == finishing || !p.shape.is_finite() {
                continue;
            }
            let limit = p.shape.duration + self.tolerance(p.shape.duration);
            if let Some(d) = self.devices.get_mut(p.device) {
                for (b, lo) in p.lo.iter().enumerate() {
                    if *lo > limit
                        && let Some(r) = d.refuted.get_mut(b)
                    {
                        *r = true;
                    }
                }
            }
        }
    }

    /// A completed process that ended before a band's fastest end rules that band out.
    pub fn note_completion(&mut self, p: &RunningProc) {
        if !p.shape.is_finite() {
            return;
        }
        let limit = p.shape.duration - self.tolerance(p.shape.duration);
        if let Some(d) = self.devices.get_mut(p.device) {
            for (b, hi) in p.hi.iter().enumerate() {
                if *hi < limit
                    && let Some(r) = d.refuted.get_mut(b)
                {
                    *r = true;
                }
            }
        }
    }

    pub fn reset_if_idle(&mut self, d: usize) {
        if !self.running.iter().any(|p| p.device == d)
            && let Some(dev) = self.devices.get_mut(d)
        {
            dev.refuted.iter_mut().for_each(|r| *r = false);
        }
    }

    /// The stretch bands to check on device `d`: the ones not ruled out, or (when all are) one
    /// band spanning the whole range.
    pub fn active_bands(&self, d: usize) -> Vec<Option<usize>> {
        let refuted = self
            .devices
            .get(d)
            .map(|x| x.refuted.as_slice())
            .unwrap_or(&[]);
        let live: Vec<Option<usize>> = (0..self.bands)
            .filter(|&b| !refuted.get(b).copied().unwrap_or(false))
            .map(Some)
            .collect();
        if live.is_empty() { vec![None] } else { live }
    }

    pub fn theta_of(&self, band: Option<usize>) -> (f64, f64) {
        band.map_or((0.0, 1.0), |b| self.theta(b))
    }

    /// The running processes of device `d` as timeline lanes for `band` (`None`: the
    /// fallback band spanning every band's interval).
    pub fn running_lanes(&self, d: usize, band: Option<usize>) -> Vec<Lane<'_>> {
        self.running
            .iter()
            .filter(|p| p.device == d)
            .map(|p| {
                let (lo, hi) = match band {
                    Some(b) => (
                        p.lo.get(b).copied().unwrap_or(0.0),
                        p.hi.get(b).copied().unwrap_or(0.0),
                    ),
                    None => (
                        p.lo.iter().copied().fold(f64::INFINITY, f64::min),
                        p.hi.iter().copied().fold(0.0, f64::max),
                    ),
                };
                let dur = p.shape.duration;
                let finite = p.shape.is_finite();
                let pinned = finite && band.is_none() && lo >= dur;
                // Overdue within the tolerance: keep it alive near its end.
                let lo = if finite && lo >= dur {
                    (dur - self.tolerance(dur)).max(0.0)
                } else {
                    lo
                };
                Lane {
                    shape: &p.shape,
                    start: p.started_at.min(self.now),
                    floor: p.live,
                    lo,
                    hi: hi.max(lo),
                    pinned,
                }
            })
            .collect()
    }

    pub fn running_points(&self, d: usize) -> Vec<PointLane<'_>> {
        self.running
            .iter()
            .filter(|p| p.device == d)
            .map(|p| PointLane {
                shape: &p.shape,
                start: p.started_at.min(self.now),
                done: p.pt,
            })
            .collect()
    }

    /// Bytes available to admitted processes on device `d` (capacity − reserves − unmanaged);
    /// `None` when its memory is unknown.
    pub fn free_budget(&self, d: usize, config_reserve: u64) -> Option<u64> {
        let dev = self.devices.get(d)?;
        dev.used?;
        Some(
            self.total_budget(d, config_reserve)
                .saturating_sub(dev.unmanaged()),
        )
    }

    /// Capacity − device reserve − configured reserve.
    pub fn total_budget(&self, d: usize, config_reserve: u64) -> u64 {
        self.devices.get(d).map_or(0, |dev| {
            dev.device
                .capacity
                .saturating_sub(dev.device.reserve)
                .saturating_sub(config_reserve)
        })
    }

    pub fn observe(&mut self, obs: &Observation) {
        for r in &obs.processes {
            if let Some(p) = self.running.iter_mut().find(|p| p.id == r.id) {
                p.live = r.used;
            }
        }
        for r in &obs.devices {
            let Some(d) = self.device_index(&r.device) else {
                continue;
            };
            let managed: u64 = self
                .running
                .iter()
                .filter(|p| p.device == d)
                .map(|p| p.live)
                .sum();
            let dev = &mut self.devices[d];
            dev.used = r.used;
            let unmanaged = r
                .unmanaged
                .or_else(|| r.used.map(|u| u.saturating_sub(managed)));
            if let Some(u) = unmanaged {
                dev.unmanaged_live = u;
                dev.unmanaged_min = Some(dev.unmanaged_min.map_or(u, |m| m.min(u)));
            }
        }
    }
}
