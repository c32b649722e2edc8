//! The `gpm` collector: engine activity from GPU Performance Monitoring (Hopper and newer),
//! per GPU, and per MIG GPU instance on MIG-enabled GPUs (all compute instances of one GPU
//! instance share its value).
//!
//! Calls: nvmlGpmQueryDeviceSupport (once per GPU), nvmlGpmSampleAlloc, nvmlGpmSampleGet,
//! nvmlGpmMigSampleGet, nvmlGpmMetricsGet (GRAPHICS_UTIL, SM_UTIL, ANY_TENSOR_UTIL, which NVML
//! gives in percent; exported as ratios), nvmlGpmSampleFree.
//! Each value covers the window between this cycle's sample and the previous one. The first
//! time a GPU or instance is seen, a baseline is taken and the collector waits 100 ms (GPM's
//! minimum spacing) before the second sample, so the first snapshot already has activity.

use super::{Collector, Kind, Outcome, Topology};
use crate::model::{Activity, Snapshot};
use crate::nvml::{CallError, NvmlBackend};
use nvml_wrapper::GpmSample;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use std::collections::HashMap;
use std::time::Duration;

/// GPM's minimum spacing between two samples.
pub const MIN_SPACING: Duration = Duration::from_millis(100);

const METRICS: [GpmMetricId; 3] = [
    GpmMetricId::GraphicsUtil,
    GpmMetricId::SmUtil,
    GpmMetricId::AnyTensorUtil,
];

/// A GPU (`None`) or one of its GPU instances (`Some(gi)`).
type Key = (u32, Option<u32>);

/// Keeps the previous sample of every GPU and GPU instance.
#[derive(Debug, Default)]
pub struct GpmCollector<'n> {
    supported: HashMap<u32, bool>,
    previous: HashMap<Key, GpmSample<'n>>,
}

impl<'n> GpmCollector<'n> {
    pub fn new() -> Self {
        Self::default()
    }
}

fn ratio(
    result: Option<&Result<nvml_wrapper::struct_wrappers::gpm::GpmMetricResult, NvmlError>>,
) -> Option<f64> {
    match result {
        Some(Ok(r)) if r.value.is_finite() => Some((r.value / 100.0).clamp(0.0, 1.0)),
        _ => None,
    }
}

impl<'n> Collector<'n> for GpmCollector<'n> {
    fn kind(&self) -> Kind {
        Kind::Gpm
    }

    fn collect(
        &mut self,
        backend: &'n NvmlBackend,
        topology: &Topology<'n>,
        snapshot: &mut Snapshot,
    ) -> Outcome {
        let mut out = Outcome::default();
        // (key, slot in snapshot, sampler)
        let mut targets: Vec<(Key, usize, &nvml_wrapper::Device<'n>)> = Vec::new();
        for handles in &topology.gpus {
            let gpu = &snapshot.gpus[handles.slot];
            let index = gpu.index;
            let supported = match self.supported.get(&index) {
                Some(s) => *s,
                None => match handles.device.gpm_support() {
                    Ok(s) => *self.supported.entry(index).or_insert(s),
                    Err(
                        NvmlError::NotSupported
                        | NvmlError::FunctionNotFound
                        | NvmlError::FailedToLoadSymbol(_),
                    ) => *self.supported.entry(index).or_insert(false),
                    Err(e) => {
                        out.errors.push(CallError::new(
                            "nvmlGpmQueryDeviceSupport",
                            Some(index.to_string()),
                            &e,
                        ));
                        continue;
                    }
                },
            };
            if !supported {
                continue;
            }
            if gpu.mig_mode == Some(true) {
                let mut gis: Vec<u32> = handles.mig.iter().filter_map(|(_, gi, _)| *gi).collect();
                gis.sort_unstable();
                gis.dedup();
                targets.extend(
                    gis.into_iter()
                        .map(|gi| ((index, Some(gi)), handles.slot, &handles.device)),
                );
            } else {
                targets.push(((index, None), handles.slot, &handles.device));
            }
        }

        let take = |out: &mut Outcome,
                    key: Key,
                    device: &nvml_wrapper::Device<'n>|
         -> Option<GpmSample<'n>> {
            let (call, result) = match key.1 {
                None => ("nvmlGpmSampleGet", device.gpm_sample()),
                Some(gi) => ("nvmlGpmMigSampleGet", device.gpm_mig_sample(gi)),
            };
            out.keep(
                call,
                || match key.1 {
                    None => key.0.to_string(),
                    Some(gi) => format!("{}/gi{gi}", key.0),
                },
                result,
            )
        };

        // Baselines for anything new, then one wait so the first values are real.
        let mut waited = false;
        for (key, _, device) in &targets {
            if !self.previous.contains_key(key)
                && let Some(s) = take(&mut out, *key, device)
            {
                self.previous.insert(*key, s);
                waited = true;
            }
        }
        if waited {
            std::thread::sleep(MIN_SPACING);
        }

        let nvml = backend.nvml();
        let mut next = HashMap::new();
        for (key, slot, device) in targets {
            let Some(now) = take(&mut out, key, device) else {
                continue;
            };
            if let Some(prev) = self.previous.get(&key) {
                let target = || format!("{}", key.0);
                if let Some(results) = out.keep(
                    "nvmlGpmMetricsGet",
                    target,
                    gpm_metrics_get(nvml, prev, &now, &METRICS),
                ) {
                    let activity = Activity {
                        graphics: ratio(results.first()),
                        sm: ratio(results.get(1)),
                        tensor: ratio(results.get(2)),
                        dram: None,
                    };
                    let gpu = &mut snapshot.gpus[slot];
                    match key.1 {
                        None => gpu.activity = activity,
                        Some(gi) => {
                            for m in gpu
                                .mig_instances
                                .iter_mut()
                                .filter(|m| m.gpu_instance_id == Some(gi))
                            {
                                m.activity = activity;
                            }
                        }
                    }
                }
            }
            next.insert(key, now);
        }
        // Samples of GPUs or instances that went away are freed here.
        self.previous = next;
        out
    }
}
