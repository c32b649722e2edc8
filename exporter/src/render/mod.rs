//! Rendering published snapshots as OpenMetrics text through prometheus-client.
//!
//! A snapshot's families are encoded once, at its first scrape, and the bytes are reused by
//! every later scrape of it: a scrape encodes only `headroom_exporter_snapshot_age_seconds`
//! and joins it with the cached text before and after it. Series are rebuilt from each new
//! snapshot, so processes that left leave no stale series behind.

mod dcgm;
mod family;
mod headroom;

use crate::published::Published;
use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// The encoded text of one snapshot around its age family.
#[derive(Debug)]
struct Encoded {
    /// Every family before `headroom_exporter_snapshot_age_seconds`.
    head: Bytes,
    /// Every family after it, and `# EOF`.
    tail: Bytes,
}

/// The last snapshot encoded, known by its allocation (a `Weak` keeps the address from
/// being reused while the cache refers to it).
#[derive(Debug)]
struct Cached {
    of: Weak<Published>,
    encoded: Arc<Encoded>,
}

/// Renders published snapshots, caching the encoding of the latest one.
#[derive(Debug)]
pub struct Renderer {
    /// `Some(hostname)` when `--compat dcgm` is on (the hostname may be unknown).
    dcgm: Option<Option<String>>,
    cache: Mutex<Option<Cached>>,
}

/// Which part of an exposition a [`Part`] encodes.
#[derive(Debug)]
enum Which {
    Head,
    Age(Instant),
    /// The cycle count, then the dcgm-exporter families when on.
    Tail(Option<Option<String>>),
}

/// One part of the exposition of a snapshot, as a prometheus-client collector.
#[derive(Debug)]
struct Part {
    published: Arc<Published>,
    which: Which,
}

impl Collector for Part {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = &self.published;
        match &self.which {
            Which::Head => headroom::encode_head(p, &mut encoder),
            Which::Age(now) => headroom::encode_age(p, *now, &mut encoder),
            Which::Tail(dcgm) => {
                headroom::encode_tail(p, &mut encoder)?;
                if let Some(hostname) = dcgm {
                    dcgm::encode(&p.snapshot, hostname.as_deref(), &mut encoder)?;
                }
                Ok(())
            }
        }
    }
}

fn encode_part(
    out: &mut String,
    published: &Arc<Published>,
    which: Which,
) -> Result<(), std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Part {
        published: published.clone(),
        which,
    }));
    prometheus_client::encoding::text::encode_registry(out, &registry)
}

impl Renderer {
    pub fn new(dcgm: Option<Option<String>>) -> Self {
        Self {
            dcgm,
            cache: Mutex::new(None),
        }
    }

    /// The encoded families of `p`: from the cache when `p` is the snapshot encoded last.
    fn encoded(&self, p: &Arc<Published>) -> Result<Arc<Encoded>, std::fmt::Error> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref()
            && std::ptr::eq(c.of.as_ptr(), Arc::as_ptr(p))
        {
            return Ok(c.encoded.clone());
        }
        let mut head = String::with_capacity(
            cache
                .as_ref()
                .map_or(16 * 1024, |c| c.encoded.head.len() + 4096),
        );
        encode_part(&mut head, p, Which::Head)?;
        let mut tail = String::with_capacity(256);
        encode_part(&mut tail, p, Which::Tail(self.dcgm.clone()))?;
        prometheus_client::encoding::text::encode_eof(&mut tail)?;
        let encoded = Arc::new(Encoded {
            head: Bytes::from(head),
            tail: Bytes::from(tail),
        });
        *cache = Some(Cached {
            of: Arc::downgrade(p),
            encoded: encoded.clone(),
        });
        Ok(encoded)
    }

    /// The exposition of `p` (or, with none published yet, an empty one) as of `now`, in
    /// three pieces to be sent back to back: the cached text before the age family, the age
    /// family, and the cached text after it.
    pub fn render(
        &self,
        p: Option<&Arc<Published>>,
        now: Instant,
    ) -> Result<[Bytes; 3], std::fmt::Error> {
        let Some(p) = p else {
            return Ok([Bytes::from_static(b"# EOF\n"), Bytes::new(), Bytes::new()]);
        };
        let encoded = self.encoded(p)?;
        let mut age = String::with_capacity(256);
        encode_part(&mut age, p, Which::Age(now))?;
        Ok([encoded.head.clone(), Bytes::from(age), encoded.tail.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::published::OomKey;
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
            kubelet_success: None,
        }
    }

    fn rendered(dcgm: Option<Option<String>>) -> String {
        let p = Arc::new(published());
        let body = Renderer::new(dcgm)
            .render(Some(&p), Instant::now())
            .unwrap();
        String::from_utf8(body.concat()).unwrap()
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
    fn a_snapshot_is_encoded_once_and_only_its_age_per_scrape() {
        let r = Renderer::new(None);
        let a = Arc::new(published());
        let t = a.at;
        let x = r.render(Some(&a), t).unwrap();
        let y = r
            .render(Some(&a), t + std::time::Duration::from_secs(2))
            .unwrap();
        // The same cached bytes before and after the age family; only the age moves.
        assert_eq!(x[0].as_ptr(), y[0].as_ptr());
        assert_eq!(x[2].as_ptr(), y[2].as_ptr());
        let (x, y) = (
            String::from_utf8(x.concat()).unwrap(),
            String::from_utf8(y.concat()).unwrap(),
        );
        assert!(
            x.contains("\nheadroom_exporter_snapshot_age_seconds 0.0\n"),
            "{x}"
        );
        assert!(
            y.contains("\nheadroom_exporter_snapshot_age_seconds 2.0\n"),
            "{y}"
        );
        assert!(
            x.ends_with("headroom_exporter_collections_total 1\n# EOF\n"),
            "{x}"
        );
        // A new snapshot is encoded afresh.
        let mut next = published();
        next.cycles_total = 2;
        let z = r.render(Some(&Arc::new(next)), t).unwrap();
        let z = String::from_utf8(z.concat()).unwrap();
        assert!(z.contains("headroom_exporter_collections_total 2\n"), "{z}");
        assert_eq!(
            String::from_utf8(r.render(None, t).unwrap().concat()).unwrap(),
            "# EOF\n"
        );
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
