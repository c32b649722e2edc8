//! The `process` collector: every process with a compute context, per GPU or per MIG device,
//! marked as MPS client or not, with what the host knows of it.
//!
//! Calls: nvmlDeviceGetComputeRunningProcesses_v3, nvmlDeviceGetMPSComputeRunningProcesses_v3
//! (with spare room and retries, see [`crate::nvml::raw`]), nvmlSystemGetProcessName (a
//! failure other than `NOT_FOUND` is a collector failure and is asked again next cycle).
//! Host: `/proc/PID/environ` (MPS memory limit, visible devices, workload) and
//! `/proc/PID/cgroup` (container, pod), read once when a pid first appears and kept while it
//! stays in NVML's listing from one cycle to the next; a pid that leaves is forgotten, so a
//! reused pid is read afresh (a pid reused within one interval would be missed). An
//! unreadable file leaves the value unknown and is not a collector failure.

use super::{Collector, Kind, Outcome, Topology};
use crate::model::{Attribution, GpuProcess, Snapshot};
use crate::mps::PinnedMemLimit;
use crate::nvml::{NvmlBackend, raw};
use crate::procfs::{MPS_LIMIT_VAR, ProcFs, VISIBLE_DEVICES_VAR, WORKLOAD_VAR};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Longest process name asked of NVML.
const NAME_LEN: usize = 64;

/// What the host says about one process, cached while the process lives.
#[derive(Debug, Clone, Default)]
struct HostInfo {
    name: Option<String>,
    limit: Option<PinnedMemLimit>,
    visible_devices: Option<String>,
    workload: Option<String>,
    attribution: Attribution,
}

/// Lists GPU processes and attributes them.
#[derive(Debug)]
pub struct ProcessCollector {
    procfs: ProcFs,
    cache: HashMap<u32, HostInfo>,
}

/// The ordinal under which a client sees a device, given its `CUDA_VISIBLE_DEVICES`.
/// Entries may be indices, GPU UUIDs (or unique prefixes of them) or MIG UUIDs.
/// Without the variable a client sees every GPU in NVML order (and a MIG device's ordinal
/// is then unknown).
pub fn client_ordinal(
    visible: Option<&str>,
    gpu_index: u32,
    gpu_uuid: &str,
    mig_uuid: Option<&str>,
) -> Option<u32> {
    let Some(visible) = visible else {
        return mig_uuid.is_none().then_some(gpu_index);
    };
    let target = mig_uuid.unwrap_or(gpu_uuid);
    visible
        .split(',')
        .map(str::trim)
        .position(|entry| {
            if entry.is_empty() {
                return false;
            }
            if mig_uuid.is_none() && entry.parse::<u32>().ok() == Some(gpu_index) {
                return true;
            }
            entry.len() >= 8 && target.starts_with(entry)
        })
        .and_then(|p| u32::try_from(p).ok())
}

impl ProcessCollector {
    pub fn new(procfs: ProcFs) -> Self {
        Self {
            procfs,
            cache: HashMap::new(),
        }
    }

    fn host_info(&mut self, backend: &NvmlBackend, pid: u32, out: &mut Outcome) -> HostInfo {
        // A cached pid was listed in the previous cycle too (the cache forgets pids that
        // leave), so it is the same process: no /proc read. A new pid is read afresh, and so
        // is one whose name NVML failed to give (not cached).
        if let Some(info) = self.cache.get(&pid) {
            info.clone()
        } else {
            let env = self
                .procfs
                .environ(pid, &[MPS_LIMIT_VAR, VISIBLE_DEVICES_VAR, WORKLOAD_VAR])
                .unwrap_or_default();
            let cgroup = self.procfs.cgroup(pid).unwrap_or_default();
            let failed = out.errors.len();
            let name = match backend.nvml().sys_process_name(pid, NAME_LEN) {
                Ok(n) => Some(n),
                // Gone since the listing: no name, and not a failure.
                Err(NvmlError::NotFound) => None,
                Err(e) => out.keep("nvmlSystemGetProcessName", || pid.to_string(), Err(e)),
            };
            let info = HostInfo {
                name,
                limit: env
                    .get(MPS_LIMIT_VAR)
                    .and_then(|v| PinnedMemLimit::parse(v).ok()),
                visible_devices: env.get(VISIBLE_DEVICES_VAR).cloned(),
                workload: env.get(WORKLOAD_VAR).filter(|w| !w.is_empty()).cloned(),
                attribution: Attribution {
                    container_id: cgroup.container_id,
                    pod_uid: cgroup.pod_uid,
                    ..Attribution::default()
                },
            };
            if out.errors.len() == failed {
                self.cache.insert(pid, info.clone());
            }
            info
        }
    }
}

fn merge(
    procs: &mut BTreeMap<u32, GpuProcess>,
    list: Vec<ProcessInfo>,
    mps: bool,
    mig: Option<&str>,
) {
    for p in list {
        let used = match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        };
        let entry = procs.entry(p.pid).or_insert_with(|| GpuProcess {
            pid: p.pid,
            name: None,
            used_memory: used,
            mps,
            mig_uuid: mig.map(str::to_string),
            mps_memory_limit: None,
            workload: None,
            attribution: Attribution::default(),
        });
        entry.mps |= mps;
        if entry.used_memory.is_none() {
            entry.used_memory = used;
        }
    }
}

impl<'n> Collector<'n> for ProcessCollector {
    fn kind(&self) -> Kind {
        Kind::Process
    }

    fn collect(
        &mut self,
        backend: &'n NvmlBackend,
        topology: &Topology<'n>,
        snapshot: &mut Snapshot,
    ) -> Outcome {
        let mut out = Outcome::default();
        let mut seen = HashSet::new();
        for handles in &topology.gpus {
            let gpu = &snapshot.gpus[handles.slot];
            let (index, uuid) = (gpu.index, gpu.uuid.clone());
            let mut targets: Vec<(Option<&str>, &nvml_wrapper::Device<'n>)> = handles
                .mig
                .iter()
                .map(|(u, _, d)| (Some(u.as_str()), d))
                .collect();
            if gpu.mig_mode != Some(true) {
                targets.push((None, &handles.device));
            }
            let mut complete = true;
            let mut procs = BTreeMap::new();
            for (mig, device) in targets {
                let target = || mig.map_or_else(|| index.to_string(), |m| format!("{index}/{m}"));
                match device.running_compute_processes() {
                    Ok(list) => merge(&mut procs, list, false, mig),
                    Err(e) => {
                        complete = false;
                        out.keep::<()>("nvmlDeviceGetComputeRunningProcesses_v3", target, Err(e));
                    }
                }
                match raw::mps_processes(backend.nvml(), device) {
                    Ok(list) => merge(&mut procs, list, true, mig),
                    // No MPS support means no MPS clients, not an unknown list.
                    Err(NvmlError::NotSupported) => {}
                    Err(e) => {
                        complete = false;
                        out.keep::<()>(
                            "nvmlDeviceGetMPSComputeRunningProcesses_v3",
                            target,
                            Err(e),
                        );
                    }
                }
            }
            let mut list: Vec<GpuProcess> = procs.into_values().collect();
            for p in &mut list {
                seen.insert(p.pid);
                let host = self.host_info(backend, p.pid, &mut out);
                p.name = host.name.clone();
                p.workload = host.workload.clone();
                p.attribution = host.attribution.clone();
                // The variable only means something to MPS clients.
                p.mps_memory_limit = host.limit.as_ref().filter(|_| p.mps).and_then(|l| {
                    let ordinal = client_ordinal(
                        host.visible_devices.as_deref(),
                        index,
                        &uuid,
                        p.mig_uuid.as_deref(),
                    );
                    match l {
                        PinnedMemLimit::All(size) => Some(*size),
                        PinnedMemLimit::PerDevice(_) => ordinal.and_then(|o| l.for_device(o)),
                    }
                });
            }
            let gpu = &mut snapshot.gpus[handles.slot];
            gpu.processes = list;
            gpu.processes_complete = complete;
        }
        self.cache.retain(|pid, _| seen.contains(pid));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPU: &str = "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5";
    const MIG: &str = "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca";

    #[test]
    fn ordinal_without_visible_devices_is_the_nvml_index() {
        assert_eq!(client_ordinal(None, 3, GPU, None), Some(3));
        assert_eq!(client_ordinal(None, 0, GPU, Some(MIG)), None);
    }

    #[test]
    fn ordinal_by_index_uuid_prefix_or_mig_uuid() {
        assert_eq!(client_ordinal(Some("2,0"), 0, GPU, None), Some(1));
        assert_eq!(
            client_ordinal(Some(&format!("GPU-aaaaaaaa,{GPU}")), 0, GPU, None),
            Some(1)
        );
        assert_eq!(client_ordinal(Some("GPU-f0adccc6"), 5, GPU, None), Some(0));
        assert_eq!(client_ordinal(Some(MIG), 0, GPU, Some(MIG)), Some(0));
        assert_eq!(client_ordinal(Some("1"), 0, GPU, None), None);
        // A bare index never names a MIG device.
        assert_eq!(client_ordinal(Some("0"), 0, GPU, Some(MIG)), None);
    }
}
