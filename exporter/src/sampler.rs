//! The sampler: runs the collectors every interval on its own thread, adds pod labels from
//! the kubelet's cached assignments, infers OOMs from successive snapshots, keeps cumulative counts, and publishes the result whole. Collector
//! failures are logged when they start, change or clear (not every cycle).

use crate::published::{CollectorReport, OomKey, Published, XidKey};
use crate::shared::Shared;
use headroom_core::collect::{
    Collector, DcgmCollector, DeviceCollector, GpmCollector, Kind, Outcome, ProcessCollector,
    XidCounts,
};
use headroom_core::dcgm::DcgmBackend;
use headroom_core::log;
use headroom_core::model::Snapshot;
use headroom_core::nvml::NvmlBackend;
use headroom_core::oom;
use headroom_core::procfs::ProcFs;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What the sampler needs.
#[derive(Debug)]
pub struct Sampler<'n> {
    pub backend: &'n NvmlBackend,
    pub shared: &'n Shared,
    pub interval: Duration,
    pub collectors: Vec<Kind>,
    pub procfs: ProcFs,
    /// Counts from the Xid listener, when the `xid` collector is on.
    pub xid: Option<&'n XidCounts>,
    /// The kubelet's latest pod assignments, when pod attribution is on.
    pub kubelet: Option<&'n headroom_kubelet::Cache>,
    /// The DCGM backend, when it serves engine activity (the `dcgm` collector).
    pub dcgm: Option<DcgmBackend>,
}

#[derive(Debug, Default)]
struct Totals {
    errors: BTreeMap<(Kind, &'static str), u64>,
    oom: BTreeMap<OomKey, u64>,
    cycles: u64,
    /// Last logged error text per collector, to log changes only.
    last_logged: HashMap<Kind, String>,
    /// GPU index → UUID, remembered for Xid events of GPUs missing from a snapshot.
    uuids: BTreeMap<u32, String>,
}

fn report(kind: Kind, started: Instant, out: Outcome) -> CollectorReport {
    CollectorReport {
        kind,
        duration: started.elapsed(),
        errors: out.errors,
    }
}

impl<'n> Sampler<'n> {
    /// Runs until a message arrives on (or the sender of) `stop`.
    pub fn run(mut self, stop: Receiver<()>) {
        let mut device = DeviceCollector::default();
        let mut others: Vec<Box<dyn Collector<'n> + 'n>> = Vec::new();
        for kind in &self.collectors {
            match kind {
                Kind::Process => others.push(Box::new(ProcessCollector::new(self.procfs.clone()))),
                Kind::Gpm => others.push(Box::new(GpmCollector::new())),
                Kind::Dcgm => {
                    if let Some(d) = self.dcgm.take() {
                        others.push(Box::new(DcgmCollector::new(d, self.interval)));
                    }
                }
                Kind::Device | Kind::Xid => {}
            }
        }
        let mut totals = Totals::default();
        // The last published state, shared with scrapes (OOM inference reads its snapshot).
        let mut previous: Option<Arc<Published>> = None;
        loop {
            let started = Instant::now();
            let published = Arc::new(self.cycle(
                &mut device,
                &mut others,
                &mut totals,
                previous.as_ref().map(|p| &p.snapshot),
            ));
            previous = Some(published.clone());
            self.shared.publish(published);
            let wait = self.interval.saturating_sub(started.elapsed());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn cycle(
        &self,
        device: &mut DeviceCollector,
        others: &mut [Box<dyn Collector<'n> + 'n>],
        totals: &mut Totals,
        previous: Option<&Snapshot>,
    ) -> Published {
        let mut snapshot = Snapshot::default();
        let mut reports = Vec::new();
        let t = Instant::now();
        let (topology, out) = device.discover(self.backend, &mut snapshot);
        reports.push(report(Kind::Device, t, out));
        for c in others.iter_mut() {
            let t = Instant::now();
            let out = c.collect(self.backend, &topology, &mut snapshot);
            reports.push(report(c.kind(), t, out));
        }
        drop(topology);
        // Pod labels from the kubelet's last good list (never a call to the kubelet here).
        if let Some(k) = self.kubelet
            && let Some(assignments) = k.current(Instant::now())
        {
            headroom_kubelet::attribute(&mut snapshot, &assignments);
        }
        for g in &snapshot.gpus {
            totals.uuids.insert(g.index, g.uuid.clone());
        }

        let mut xid_total = BTreeMap::new();
        if let Some(xid) = self.xid {
            let t = Instant::now();
            let state = xid.state();
            for ((index, code), n) in state.counts {
                if let Some(uuid) = totals.uuids.get(&index) {
                    xid_total.insert(
                        XidKey {
                            gpu_index: index,
                            gpu_uuid: uuid.clone(),
                            xid: code,
                        },
                        n,
                    );
                }
            }
            let out = Outcome {
                errors: state.error.into_iter().collect(),
            };
            reports.push(report(Kind::Xid, t, out));
        }

        if let Some(prev) = previous
            && reports.iter().any(|r| r.kind == Kind::Process)
        {
            for ev in oom::infer(prev, &snapshot) {
                log::warn(
                    "inferred out-of-memory exit",
                    &[
                        ("gpu", &ev.gpu_index),
                        ("pid", &ev.pid),
                        ("workload", &ev.workload),
                        ("cause", &format!("{:?}", ev.cause)),
                    ],
                );
                let key = OomKey {
                    gpu_index: ev.gpu_index,
                    gpu_uuid: ev.gpu_uuid,
                    mig_uuid: ev.mig_uuid,
                    workload: ev.workload,
                    source: "inferred",
                };
                *totals.oom.entry(key).or_insert(0) += 1;
            }
        }

        for r in &reports {
            for e in &r.errors {
                *totals.errors.entry((r.kind, e.kind.reason())).or_insert(0) += 1;
            }
            let text: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
            let text = text.join("; ");
            let last = totals.last_logged.get(&r.kind).cloned().unwrap_or_default();
            if text != last {
                if text.is_empty() {
                    log::info("collector recovered", &[("collector", &r.kind)]);
                } else {
                    log::warn(
                        "collector failing",
                        &[("collector", &r.kind), ("errors", &text)],
                    );
                }
                totals.last_logged.insert(r.kind, text);
            }
        }
        totals.cycles += 1;
        Published {
            snapshot,
            at: Instant::now(),
            collectors: reports,
            errors_total: totals.errors.clone(),
            xid_total,
            oom_total: totals.oom.clone(),
            cycles_total: totals.cycles,
            kubelet_success: self.kubelet.and_then(headroom_kubelet::Cache::last_ok),
        }
    }
}
