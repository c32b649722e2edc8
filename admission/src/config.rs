//! The policy's knobs ([`Config`]) and where it finds learned profiles ([`ProfileSource`]).

use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Policy knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// A learned profile's limit is its peak × (1 + margin) (capped at the device's free
    /// budget). Default 0.10.
    pub margin: f64,
    /// Bytes kept free on every device, on top of the device's own reserve. Default 0.
    pub reserve: u64,
    /// Start times are planned on this grid (seconds). The memory check itself is exact
    /// (event-driven), so this only sets how finely a later start is searched. Default 1 s.
    pub horizon_step_s: f64,
    /// The contention factor's uncertainty range is split into this many bands that are
    /// checked separately, on the assumption that contention affects all processes on a
    /// device alike (1 = treat every process's stretch as independent). Default 4.
    pub stretch_bands: usize,
    /// How many queued requests behind one the stagger search looks at. 0 disables
    /// staggering (plain earliest-fit). Default 2.
    pub stagger_lookahead: usize,
    /// The longest a request that fits now may be held back to keep peaks apart, as a
    /// fraction of its solo duration. Default 0.5.
    pub max_stagger: f64,
    /// Only the first this many queued requests are planned (given a device and a predicted
    /// start) on each `decide`; the rest wait with [`crate::WaitReason::Queued`] until they move up.
    /// Bounds the cost of a decision on a long queue. Default 6.
    pub plan_depth: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            margin: 0.10,
            reserve: 0,
            horizon_step_s: 1.0,
            stretch_bands: 4,
            stagger_lookahead: 2,
            max_stagger: 0.5,
            plan_depth: 6,
        }
    }
}

impl Config {
    pub(crate) fn sanitized(mut self) -> Self {
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            self.margin = 0.0;
        }
        if !(self.horizon_step_s.is_finite() && self.horizon_step_s > 0.0) {
            self.horizon_step_s = 1.0;
        }
        self.stretch_bands = self.stretch_bands.clamp(1, 16);
        self.plan_depth = self.plan_depth.max(1);
        if !(self.max_stagger.is_finite() && self.max_stagger >= 0.0) {
            self.max_stagger = 0.0;
        }
        self
    }
}

/// Where the policy finds learned profiles.
pub trait ProfileSource {
    fn profile(&self, workload: &str) -> Option<&Profile>;
    /// The largest peak of any known profile (sizes an unknown workload's first run).
    fn largest_peak(&self) -> Option<u64>;
}

impl<S: BuildHasher> ProfileSource for HashMap<String, Profile, S> {
    fn profile(&self, workload: &str) -> Option<&Profile> {
        self.get(workload)
    }
    fn largest_peak(&self) -> Option<u64> {
        self.values().map(Profile::peak).max()
    }
}

impl ProfileSource for BTreeMap<String, Profile> {
    fn profile(&self, workload: &str) -> Option<&Profile> {
        self.get(workload)
    }
    fn largest_peak(&self) -> Option<u64> {
        self.values().map(Profile::peak).max()
    }
}

impl ProfileSource for [Profile] {
    fn profile(&self, workload: &str) -> Option<&Profile> {
        self.iter().find(|p| p.name() == workload)
    }
    fn largest_peak(&self) -> Option<u64> {
        self.iter().map(Profile::peak).max()
    }
}

impl ProfileSource for Vec<Profile> {
    fn profile(&self, workload: &str) -> Option<&Profile> {
        self.as_slice().profile(workload)
    }
    fn largest_peak(&self) -> Option<u64> {
        self.as_slice().largest_peak()
    }
}
