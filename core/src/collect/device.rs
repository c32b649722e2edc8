//! The `device` collector: discovers GPUs and their MIG devices and reads per-device values.
//!
//! Calls: nvmlSystemGetDriverVersion, nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2,
//! nvmlDeviceGetUUID, nvmlDeviceGetName, nvmlDeviceGetMigMode, nvmlDeviceGetMemoryInfo_v2,
//! nvmlDeviceGetTemperature, nvmlDeviceGetPowerUsage, nvmlDeviceGetClockInfo(SM),
//! nvmlDeviceGetUtilizationRates (not on MIG-enabled GPUs), and for MIG:
//! nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex,
//! nvmlDeviceGetGpuInstanceId, nvmlDeviceGetComputeInstanceId.
//! A GPU whose UUID cannot be read is left out (its identity is never invented).

use super::{GpuHandles, Outcome, Topology};
use crate::model::{Gpu, Memory, MigInstance, Snapshot};
use crate::nvml::{CallError, NvmlBackend, raw};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use std::collections::HashMap;

/// Reads GPU identity once per index and everything else each cycle.
#[derive(Debug, Default)]
pub struct DeviceCollector {
    identity: HashMap<u32, (String, Option<String>)>,
    driver_version: Option<String>,
}

/// The profile part of a MIG device name, e.g. `3g.40gb` from `NVIDIA H100 80GB HBM3 MIG 3g.40gb`.
pub fn mig_profile_from_name(name: &str) -> Option<String> {
    let (_, profile) = name.rsplit_once("MIG ")?;
    let profile = profile.trim();
    (!profile.is_empty()).then(|| profile.to_string())
}

impl<'n> DeviceCollector {
    fn identity(
        &mut self,
        out: &mut Outcome,
        index: u32,
        device: &nvml_wrapper::Device<'n>,
    ) -> Option<(String, Option<String>)> {
        if let Some(id) = self.identity.get(&index) {
            return Some(id.clone());
        }
        let uuid = out.keep("nvmlDeviceGetUUID", || index.to_string(), device.uuid())?;
        let failed = out.errors.len();
        let name = out.keep("nvmlDeviceGetName", || index.to_string(), device.name());
        // A name that failed (not merely unsupported) is asked again next cycle.
        if out.errors.len() == failed {
            self.identity.insert(index, (uuid.clone(), name.clone()));
        }
        Some((uuid, name))
    }

    fn mig_devices(
        out: &mut Outcome,
        backend: &'n NvmlBackend,
        gpu: &mut Gpu,
        handles: &mut GpuHandles<'n>,
    ) {
        let index = gpu.index;
        let Some(max) = out.keep(
            "nvmlDeviceGetMaxMigDeviceCount",
            || index.to_string(),
            handles.device.mig_device_count(),
        ) else {
            return;
        };
        for slot in 0..max {
            let mig = match handles.device.mig_device_by_index(slot) {
                Ok(d) => d,
                Err(NvmlError::NotFound) => continue,
                Err(e) => {
                    out.errors.push(CallError::new(
                        "nvmlDeviceGetMigDeviceHandleByIndex",
                        Some(format!("{index}/{slot}")),
                        &e,
                    ));
                    continue;
                }
            };
            let target = || format!("{index}/mig{slot}");
            let Some(uuid) = out.keep("nvmlDeviceGetUUID", target, mig.uuid()) else {
                continue;
            };
            let nvml = backend.nvml();
            let gi = out.keep(
                "nvmlDeviceGetGpuInstanceId",
                target,
                raw::gpu_instance_id(nvml, &mig),
            );
            let ci = out.keep(
                "nvmlDeviceGetComputeInstanceId",
                target,
                raw::compute_instance_id(nvml, &mig),
            );
            let profile = out
                .keep("nvmlDeviceGetName", target, mig.name())
                .and_then(|n| mig_profile_from_name(&n));
            let memory = out
                .keep("nvmlDeviceGetMemoryInfo_v2", target, mig.memory_info())
                .map(|m| Memory {
                    total: m.total,
                    reserved: m.reserved,
                    used: m.used,
                });
            gpu.mig_instances.push(MigInstance {
                uuid: uuid.clone(),
                gpu_instance_id: gi,
                compute_instance_id: ci,
                profile,
                memory,
                activity: Default::default(),
            });
            handles.mig.push((uuid, gi, mig));
        }
    }
}

impl<'n> DeviceCollector {
    /// Discovers the GPUs of this cycle; the other collectors use the returned topology.
    pub fn discover(
        &mut self,
        backend: &'n NvmlBackend,
        snapshot: &mut Snapshot,
    ) -> (Topology<'n>, Outcome) {
        let mut out = Outcome::default();
        let mut topology = Topology::default();
        if self.driver_version.is_none() {
            match backend.driver_version() {
                Ok(v) => self.driver_version = Some(v),
                Err(e) if e.is_not_supported() => {}
                Err(e) => out.errors.push(e),
            }
        }
        snapshot.driver_version = self.driver_version.clone();
        let count = match backend.device_count() {
            Ok(c) => c,
            Err(e) => {
                out.errors.push(e);
                return (topology, out);
            }
        };
        for index in 0..count {
            let device = match backend.device(index) {
                Ok(d) => d,
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            let Some((uuid, name)) = self.identity(&mut out, index, &device) else {
                continue;
            };
            let mut gpu = Gpu::new(index, uuid, name);
            let target = || index.to_string();
            gpu.mig_mode = out
                .keep("nvmlDeviceGetMigMode", target, device.mig_mode())
                .map(|m| m.current == 1);
            gpu.memory = out
                .keep("nvmlDeviceGetMemoryInfo_v2", target, device.memory_info())
                .map(|m| Memory {
                    total: m.total,
                    reserved: m.reserved,
                    used: m.used,
                });
            gpu.temperature_celsius = out
                .keep(
                    "nvmlDeviceGetTemperature",
                    target,
                    device.temperature(TemperatureSensor::Gpu),
                )
                .map(f64::from);
            gpu.power_watts = out
                .keep("nvmlDeviceGetPowerUsage", target, device.power_usage())
                .map(|mw| f64::from(mw) / 1000.0);
            gpu.sm_clock_hertz = out
                .keep(
                    "nvmlDeviceGetClockInfo",
                    target,
                    device.clock_info(Clock::SM),
                )
                .map(|mhz| f64::from(mhz) * 1e6);
            let mut handles = GpuHandles {
                slot: snapshot.gpus.len(),
                device,
                mig: Vec::new(),
            };
            if gpu.mig_mode == Some(true) {
                Self::mig_devices(&mut out, backend, &mut gpu, &mut handles);
            } else {
                gpu.utilization = out
                    .keep(
                        "nvmlDeviceGetUtilizationRates",
                        target,
                        handles.device.utilization_rates(),
                    )
                    .map(|u| f64::from(u.gpu.min(100)) / 100.0);
            }
            snapshot.gpus.push(gpu);
            topology.gpus.push(handles);
        }
        (topology, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_from_mig_name() {
        assert_eq!(
            mig_profile_from_name("NVIDIA H100 80GB HBM3 MIG 3g.40gb").as_deref(),
            Some("3g.40gb")
        );
        assert_eq!(
            mig_profile_from_name("NVIDIA H100 MIG 1c.3g.40gb").as_deref(),
            Some("1c.3g.40gb")
        );
        assert_eq!(mig_profile_from_name("NVIDIA H100 80GB HBM3"), None);
        assert_eq!(mig_profile_from_name("X MIG "), None);
    }
}
