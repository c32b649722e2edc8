//! OOM inference from two successive snapshots. NVML has no OOM event, so a process that
//! vanished while it sat at its MPS memory limit, or while its GPU (or MIG instance) was full,
//! is counted as an inferred out-of-memory exit (`source="inferred"`). The sidecar adds
//! confirmed ones (`source="launcher"`) from exit status and stderr.
//!
//! Inference needs complete process listings on both sides: a GPU whose listing failed in
//! either cycle yields nothing (a failed call is not a departure).

use crate::model::{Gpu, GpuProcess, Memory, Snapshot};

/// A process counts as "at its limit" when its usage is within this fraction of the limit.
pub const LIMIT_SLACK: f64 = 0.05;
/// A device counts as "full" when less than this fraction of its memory is free
/// (the seeds' H100 showed 3–4% free just before each OOM).
pub const FULL_FREE_FRACTION: f64 = 0.05;

/// Why a departure was read as an OOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomCause {
    AtMpsLimit,
    DeviceFull,
}

/// One inferred OOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomEvent {
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub mig_uuid: Option<String>,
    pub pid: u32,
    /// `HEADROOM_WORKLOAD` of the process, else its name, else `unknown`.
    pub workload: String,
    pub cause: OomCause,
}

fn full(memory: Option<Memory>) -> bool {
    memory.is_some_and(|m| m.total > 0 && (m.free() as f64) < m.total as f64 * FULL_FREE_FRACTION)
}

fn cause(gpu: &Gpu, p: &GpuProcess) -> Option<OomCause> {
    if let (Some(used), Some(limit)) = (p.used_memory, p.mps_memory_limit)
        && limit > 0
        && used as f64 >= limit as f64 * (1.0 - LIMIT_SLACK)
    {
        return Some(OomCause::AtMpsLimit);
    }
    let domain = match &p.mig_uuid {
        Some(m) => gpu.mig(m).and_then(|m| m.memory),
        None => gpu.memory,
    };
    full(domain).then_some(OomCause::DeviceFull)
}

/// The OOMs inferred between `prev` and `cur`.
pub fn infer(prev: &Snapshot, cur: &Snapshot) -> Vec<OomEvent> {
    let mut events = Vec::new();
    for before in prev.gpus.iter().filter(|g| g.processes_complete) {
        let Some(after) = cur.gpu(&before.uuid).filter(|g| g.processes_complete) else {
            continue;
        };
        for p in &before.processes {
            if after.processes.iter().any(|q| q.pid == p.pid) {
                continue;
            }
            if let Some(cause) = cause(before, p) {
                events.push(OomEvent {
                    gpu_index: before.index,
                    gpu_uuid: before.uuid.clone(),
                    mig_uuid: p.mig_uuid.clone(),
                    pid: p.pid,
                    workload: p
                        .workload
                        .clone()
                        .or_else(|| p.name.clone())
                        .unwrap_or_else(|| "unknown".into()),
                    cause,
                });
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attribution, MigInstance};

    const GIB: u64 = 1 << 30;

    fn proc(pid: u32, used: u64, limit: Option<u64>, mig: Option<&str>) -> GpuProcess {
        GpuProcess {
            pid,
            name: Some("python3".into()),
            used_memory: Some(used),
            mps: true,
            mig_uuid: mig.map(str::to_string),
            mps_memory_limit: limit,
            workload: None,
            attribution: Attribution::default(),
        }
    }

    fn gpu(used: u64, procs: Vec<GpuProcess>) -> Gpu {
        let mut g = Gpu::new(0, "GPU-1".into(), None);
        g.memory = Some(Memory {
            total: 80 * GIB,
            reserved: 0,
            used,
        });
        g.processes = procs;
        g.processes_complete = true;
        g
    }

    fn snap(g: Gpu) -> Snapshot {
        Snapshot {
            driver_version: None,
            gpus: vec![g],
        }
    }

    #[test]
    fn vanishing_at_the_mps_limit_is_an_oom() {
        let prev = snap(gpu(
            40 * GIB,
            vec![
                proc(1, 16 * GIB - GIB / 4, Some(16 * GIB), None),
                proc(2, 20 * GIB, None, None),
            ],
        ));
        let cur = snap(gpu(20 * GIB, vec![proc(2, 20 * GIB, None, None)]));
        let ev = infer(&prev, &cur);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].pid, ev[0].cause, ev[0].workload.as_str()),
            (1, OomCause::AtMpsLimit, "python3")
        );
    }

    #[test]
    fn vanishing_from_a_full_gpu_is_an_oom_and_from_a_roomy_one_is_not() {
        let full = snap(gpu(
            78 * GIB,
            vec![proc(1, 33 * GIB, None, None), proc(2, 22 * GIB, None, None)],
        ));
        let cur = snap(gpu(22 * GIB, vec![proc(2, 22 * GIB, None, None)]));
        assert_eq!(infer(&full, &cur)[0].cause, OomCause::DeviceFull);
        let roomy = snap(gpu(
            50 * GIB,
            vec![proc(1, 28 * GIB, None, None), proc(2, 22 * GIB, None, None)],
        ));
        assert!(infer(&roomy, &cur).is_empty());
    }

    #[test]
    fn full_mig_instance_counts_not_the_gpu() {
        let mig = "MIG-a";
        let mut g = gpu(45 * GIB, vec![proc(1, 39 * GIB, None, Some(mig))]);
        g.mig_instances.push(MigInstance {
            uuid: mig.into(),
            gpu_instance_id: Some(1),
            compute_instance_id: Some(0),
            profile: Some("3g.40gb".into()),
            memory: Some(Memory {
                total: 40 * GIB,
                reserved: 0,
                used: 39 * GIB,
            }),
            activity: Default::default(),
        });
        let ev = infer(&snap(g), &snap(gpu(6 * GIB, vec![])));
        assert_eq!(ev[0].mig_uuid.as_deref(), Some(mig));
    }

    #[test]
    fn incomplete_listings_infer_nothing() {
        let prev = snap(gpu(79 * GIB, vec![proc(1, 33 * GIB, None, None)]));
        let mut g = gpu(79 * GIB, vec![]);
        g.processes_complete = false;
        assert!(infer(&prev, &snap(g)).is_empty());
    }
}
