//! What the sampler publishes after each cycle and scrapes read: the snapshot plus the
//! exporter's own bookkeeping (collector outcomes, cumulative Xid/OOM/error counts).

use headroom_core::collect::Kind;
use headroom_core::model::Snapshot;
use headroom_core::nvml::CallError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How one collector fared in the last cycle.
#[derive(Debug, Clone)]
pub struct CollectorReport {
    pub kind: Kind,
    pub duration: Duration,
    pub errors: Vec<CallError>,
}

impl CollectorReport {
    pub fn success(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Labels of one OOM counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OomKey {
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub mig_uuid: Option<String>,
    pub workload: String,
    pub source: &'static str,
}

/// Labels of one Xid counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct XidKey {
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub xid: u64,
}

/// The latest state a scrape renders.
#[derive(Debug, Clone)]
pub struct Published {
    pub snapshot: Snapshot,
    /// When the cycle that produced this finished.
    pub at: Instant,
    pub collectors: Vec<CollectorReport>,
    /// (collector, reason) → failed calls since start.
    pub errors_total: BTreeMap<(Kind, &'static str), u64>,
    pub xid_total: BTreeMap<XidKey, u64>,
    pub oom_total: BTreeMap<OomKey, u64>,
    pub cycles_total: u64,
    /// Whether the kubelet's last pod-resources call succeeded; `None` when pod attribution
    /// is off or no call has ended yet.
    pub kubelet_success: Option<bool>,
}
