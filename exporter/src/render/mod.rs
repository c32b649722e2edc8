//! Rendering the latest published snapshot as OpenMetrics text through prometheus-client.
//! A [`ScrapeCollector`] encodes a fresh label set on every scrape, so processes that left
//! leave no stale series behind.

mod dcgm;
mod family;
mod headroom;

use crate::shared::Shared;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Encodes whatever the sampler last published.
#[derive(Debug)]
pub struct ScrapeCollector {
    shared: Arc<Shared>,
    /// `Some(hostname)` when `--compat dcgm` is on (the hostname may be unknown).
    dcgm: Option<Option<String>>,
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(published) = self.shared.latest() else {
            return Ok(());
        };
        headroom::encode(&published, Instant::now(), &mut encoder)?;
        if let Some(hostname) = &self.dcgm {
            dcgm::encode(&published.snapshot, hostname.as_deref(), &mut encoder)?;
        }
        Ok(())
    }
}

/// The registry scrapes encode.
pub fn registry(shared: Arc<Shared>, dcgm: Option<Option<String>>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector { shared, dcgm }));
    registry
}

/// Renders the registry as OpenMetrics text.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::published::{OomKey, Published};
    use headroom_core::model::{Gpu, GpuProcess, Memory, Snapshot};
    use std::collections::BTreeMap;

    fn published() -> Published {
        let mut g = Gpu::new(0, "GPU-abc".into(), Some("NVIDIA H100 80GB HBM3".into()));
        g.mig_mode = Some(false);
        g.memory = Some(Memory {
            total: 80 << 30,
            reserved: 0,
            used: 20 << 30,
        });
        g.processes.push(GpuProcess {
            pid: 42,
            name: Some("python3".into()),
            used_memory: Some(20 << 30),
            mps: true,
            mig_uuid: None,
            mps_memory_limit: Some(24 << 30),
            workload: Some("ti2v-5b".into()),
            attribution: Default::default(),
        });
        let mut oom = BTreeMap::new();
        oom.insert(
            OomKey {
                gpu_index: 0,
                gpu_uuid: "GPU-abc".into(),
                mig_uuid: None,
                workload: "ti2v-5b".into(),
                source: "inferred",
            },
            2,
        );
        Published {
            snapshot: Snapshot {
                driver_version: Some("580.95.05".into()),
                gpus: vec![g],
            },
            at: std::time::Instant::now(),
            collectors: Vec::new(),
            errors_total: BTreeMap::new(),
            xid_total: BTreeMap::new(),
            oom_total: oom,
            cycles_total: 1,
        }
    }

    fn rendered(dcgm: Option<Option<String>>) -> String {
        let shared = Arc::new(Shared::new(std::time::Duration::from_secs(1)));
        shared.publish(published());
        render(&registry(shared, dcgm)).unwrap()
    }

    #[test]
    fn info_and_contract_families() {
        let text = rendered(None);
        assert!(
            text.contains("headroom_gpu_info{gpu=\"0\",gpu_uuid=\"GPU-abc\",model=\"NVIDIA H100 80GB HBM3\",driver_version=\"580.95.05\",mig_mode=\"disabled\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE headroom_gpu_memory_used_bytes gauge\n# UNIT headroom_gpu_memory_used_bytes bytes\n"));
        assert!(text.contains("headroom_process_memory_used_bytes{gpu=\"0\",gpu_uuid=\"GPU-abc\",pid=\"42\",process=\"python3\",mps=\"true\",workload=\"ti2v-5b\"} 21474836480\n"), "{text}");
        assert!(text.contains("headroom_mps_client_memory_limit_bytes{"));
        assert!(text.contains("headroom_oom_events_total{gpu=\"0\",gpu_uuid=\"GPU-abc\",workload=\"ti2v-5b\",source=\"inferred\"} 2\n"), "{text}");
        assert!(text.contains("headroom_exporter_build_info{version=\""));
        // Unknown values are absent, never 0: no temperature was read.
        assert!(!text.contains("headroom_gpu_temperature"));
        assert!(!text.contains("DCGM_FI_"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn dcgm_compat_units_and_labels() {
        let text = rendered(Some(Some("node-1".into())));
        assert!(
            text.contains("DCGM_FI_DEV_FB_USED{gpu=\"0\",UUID=\"GPU-abc\",device=\"nvidia0\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"} 20480.0\n"),
            "{text}"
        );
        assert!(text.contains("DCGM_FI_DEV_FB_FREE{") && text.contains("} 61440.0\n"));
    }
}
