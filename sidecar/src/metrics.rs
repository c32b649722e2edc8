//! The daemon's own metrics, served on its TCP listener. Families:
//!
//! - `headroom_admission_queue_length{device}`, `headroom_admission_running{device}`
//! - `headroom_admission_wait_seconds{device}` (histogram of queue waits of admitted requests)
//! - `headroom_admission_admitted_total{device}`, `headroom_admission_waits_total{device}`
//!   (requests that could not start at once), `headroom_admission_rejected_total{reason}`
//! - `headroom_admission_capacity_bytes{device}`, `headroom_admission_used_bytes{device}`
//!   (live), `headroom_admission_reserved_bytes{device}` (what admitted processes may reach),
//!   `headroom_admission_predicted_peak_bytes{device}` (the running set's predicted peak)
//! - `headroom_oom_events_total{gpu,gpu_uuid,mig_uuid,workload,source="launcher"}`
//!   (confirmed by the launcher: exit status plus an OOM message on stderr)
//! - `headroom_profile_known`, `headroom_profile_peak_bytes{workload}`,
//!   `headroom_profile_runs{workload}`
//!
//! A device label is the GPU or MIG UUID the sidecar manages.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

pub type Labels = Vec<(String, String)>;

fn device(d: &str) -> Labels {
    vec![("device".to_string(), d.to_string())]
}

fn wait_histogram() -> Histogram {
    // 1 s … ~4.5 h
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

/// One device's gauges for a round.
#[derive(Debug, Clone, Copy)]
pub struct DeviceGauges {
    pub capacity: u64,
    pub used: Option<u64>,
    pub reserved: Option<u64>,
    pub predicted_peak: Option<u64>,
    pub queued: usize,
    pub running: usize,
}

/// Every metric the daemon keeps.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    queue_length: Family<Labels, Gauge>,
    running: Family<Labels, Gauge>,
    wait: Family<Labels, Histogram, fn() -> Histogram>,
    admitted: Family<Labels, Counter>,
    waits: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    capacity: Family<Labels, Gauge>,
    used: Family<Labels, Gauge>,
    reserved: Family<Labels, Gauge>,
    predicted_peak: Family<Labels, Gauge>,
    oom: Family<Labels, Counter>,
    profiles_known: Gauge,
    profile_peak: Family<Labels, Gauge>,
    profile_runs: Family<Labels, Gauge>,
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            queue_length: Family::default(),
            running: Family::default(),
            wait: Family::new_with_constructor(wait_histogram as fn() -> Histogram),
            admitted: Family::default(),
            waits: Family::default(),
            rejected: Family::default(),
            capacity: Family::default(),
            used: Family::default(),
            reserved: Family::default(),
            predicted_peak: Family::default(),
            oom: Family::default(),
            profiles_known: Gauge::default(),
            profile_peak: Family::default(),
            profile_runs: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "headroom_admission_queue_length",
            "Requests waiting, per device they are planned on (or 'any').",
            m.queue_length.clone(),
        );
        registry.register(
            "headroom_admission_running",
            "Admitted processes, per device.",
            m.running.clone(),
        );
        registry.register_with_unit(
            "headroom_admission_wait",
            "Time admitted requests spent queued.",
            Unit::Seconds,
            m.wait.clone(),
        );
        registry.register(
            "headroom_admission_admitted",
            "Requests admitted.",
            m.admitted.clone(),
        );
        registry.register(
            "headroom_admission_waits",
            "Requests that could not start at once and were queued.",
            m.waits.clone(),
        );
        registry.register(
            "headroom_admission_rejected",
            "Requests refused, by reason.",
            m.rejected.clone(),
        );
        registry.register_with_unit(
            "headroom_admission_capacity",
            "Memory processes can use on the device.",
            Unit::Bytes,
            m.capacity.clone(),
        );
        registry.register_with_unit(
            "headroom_admission_used",
            "Live memory used on the device.",
            Unit::Bytes,
            m.used.clone(),
        );
        registry.register_with_unit(
            "headroom_admission_reserved",
            "Memory the admitted processes may reach (their limits).",
            Unit::Bytes,
            m.reserved.clone(),
        );
        registry.register_with_unit(
            "headroom_admission_predicted_peak",
            "Predicted peak of everything on the device.",
            Unit::Bytes,
            m.predicted_peak.clone(),
        );
        registry.register(
            "headroom_oom_events",
            "Out-of-memory exits of launched processes, confirmed by the launcher.",
            m.oom.clone(),
        );
        registry.register(
            "headroom_profile_known",
            "Workloads with a learned profile.",
            m.profiles_known.clone(),
        );
        registry.register_with_unit(
            "headroom_profile_peak",
            "Learned peak memory per workload.",
            Unit::Bytes,
            m.profile_peak.clone(),
        );
        registry.register(
            "headroom_profile_runs",
            "Runs a workload's profile was learned from.",
            m.profile_runs.clone(),
        );
        Self { registry, ..m }
    }

    pub fn admitted(&self, dev: &str, waited_s: f64) {
        self.admitted.get_or_create(&device(dev)).inc();
        self.wait
            .get_or_create(&device(dev))
            .observe(waited_s.max(0.0));
    }

    pub fn waited(&self, dev: &str) {
        self.waits.get_or_create(&device(dev)).inc();
    }

    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }

    pub fn oom(&self, labels: Labels) {
        self.oom.get_or_create(&labels).inc();
    }

    /// Sets the per-device gauges; `None` values are removed (unknown, not 0).
    /// Queued requests not planned on a device yet (deeper than the plan depth, or not
    /// planned since they arrived): `headroom_admission_queue_length{device="any"}`.
    pub fn unplanned(&self, n: usize) {
        self.queue_length
            .get_or_create(&device("any"))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn device(&self, dev: &str, g: &DeviceGauges) {
        let l = device(dev);
        self.capacity.get_or_create(&l).set(clamp(g.capacity));
        for (family, v) in [
            (&self.used, g.used),
            (&self.reserved, g.reserved),
            (&self.predicted_peak, g.predicted_peak),
        ] {
            match v {
                Some(v) => {
                    family.get_or_create(&l).set(clamp(v));
                }
                None => {
                    family.remove(&l);
                }
            }
        }
        self.queue_length
            .get_or_create(&l)
            .set(i64::try_from(g.queued).unwrap_or(i64::MAX));
        self.running
            .get_or_create(&l)
            .set(i64::try_from(g.running).unwrap_or(i64::MAX));
    }

    pub fn profile(&self, workload: &str, peak: u64, runs: u32) {
        let l = vec![("workload".to_string(), workload.to_string())];
        self.profile_peak.get_or_create(&l).set(clamp(peak));
        self.profile_runs.get_or_create(&l).set(i64::from(runs));
    }

    pub fn profiles_known(&self, n: usize) {
        self.profiles_known
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unplanned_requests_are_counted_under_any() {
        let m = Metrics::new();
        m.unplanned(3);
        m.device(
            "GPU-a",
            &DeviceGauges {
                capacity: 80,
                used: None,
                reserved: None,
                predicted_peak: None,
                queued: 1,
                running: 2,
            },
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        assert!(
            text.contains("headroom_admission_queue_length{device=\"any\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("headroom_admission_queue_length{device=\"GPU-a\"} 1\n"),
            "{text}"
        );
        // Unknown live usage is absent, not 0.
        assert!(!text.contains("headroom_admission_used_bytes{"), "{text}");
        m.unplanned(0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        assert!(
            text.contains("headroom_admission_queue_length{device=\"any\"} 0\n"),
            "{text}"
        );
    }
}
