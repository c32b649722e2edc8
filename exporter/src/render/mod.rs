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
