//! Devices of a scenario (a GPU or one of its MIG instances) and what runs on them at a
//! virtual moment: the static processes of the scenario plus the live jobs of the state
//! directory.

use crate::scenario::{Activity, ActivityKind, Gpu, MigInstance, Scenario};
use crate::state::LiveJob;

/// A GPU (by index) or a MIG instance (GPU index and slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRef {
    Gpu(usize),
    Mig { gpu: usize, slot: usize },
}

impl DeviceRef {
    /// The GPU this device belongs to.
    pub fn gpu(self) -> usize {
        match self {
            Self::Gpu(g) | Self::Mig { gpu: g, .. } => g,
        }
    }
}

/// A process on a device at some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningProcess {
    pub pid: u32,
    pub name: String,
    /// Bytes in use.
    pub used: u64,
    pub mps: bool,
    pub gpu: usize,
    /// MIG slot, if it runs in a MIG instance.
    pub mig: Option<usize>,
    /// Counts as a co-runner for contention.
    pub contends: bool,
    /// A live `fake-gpu-job` (not a static scenario process).
    pub live: bool,
}

impl RunningProcess {
    /// Whether it runs on `device` (a GPU handle covers its MIG instances too).
    pub fn on(&self, device: DeviceRef) -> bool {
        match device {
            DeviceRef::Gpu(g) => self.gpu == g,
            DeviceRef::Mig { gpu, slot } => self.gpu == gpu && self.mig == Some(slot),
        }
    }

    /// Whether it runs on exactly `device` (a GPU means: not inside a MIG instance).
    pub fn exactly_on(&self, device: DeviceRef) -> bool {
        match device {
            DeviceRef::Gpu(g) => self.gpu == g && self.mig.is_none(),
            DeviceRef::Mig { .. } => self.on(device),
        }
    }
}

impl Scenario {
    /// The GPU at `index`.
    pub fn gpu(&self, index: usize) -> Option<&Gpu> {
        self.gpus.get(index)
    }

    /// The MIG instance `slot` of GPU `gpu`.
    pub fn mig(&self, gpu: usize, slot: usize) -> Option<&MigInstance> {
        self.gpus.get(gpu)?.migs.get(slot)
    }

    /// Whether `device` exists.
    pub fn has(&self, device: DeviceRef) -> bool {
        match device {
            DeviceRef::Gpu(g) => self.gpu(g).is_some(),
            DeviceRef::Mig { gpu, slot } => self.mig(gpu, slot).is_some(),
        }
    }

    /// The device with GPU or MIG uuid `uuid`.
    pub fn device_by_uuid(&self, uuid: &str) -> Option<DeviceRef> {
        for g in &self.gpus {
            if g.uuid == uuid {
                return Some(DeviceRef::Gpu(g.index));
            }
            if let Some(m) = g.migs.iter().find(|m| m.uuid == uuid) {
                return Some(DeviceRef::Mig {
                    gpu: g.index,
                    slot: m.slot,
                });
            }
        }
        None
    }

    /// The uuid of `device`.
    pub fn device_uuid(&self, device: DeviceRef) -> Option<&str> {
        match device {
            DeviceRef::Gpu(g) => self.gpu(g).map(|g| g.uuid.as_str()),
            DeviceRef::Mig { gpu, slot } => self.mig(gpu, slot).map(|m| m.uuid.as_str()),
        }
    }

    /// Memory a CUDA process can use on `device`: total − driver reserve for a GPU, the
    /// profile's memory for a MIG instance.
    pub fn capacity(&self, device: DeviceRef) -> u64 {
        match device {
            DeviceRef::Gpu(g) => self
                .gpu(g)
                .map_or(0, |g| g.memory_total.saturating_sub(g.memory_reserved)),
            DeviceRef::Mig { gpu, slot } => {
                self.mig(gpu, slot).map_or(0, |m| m.profile.memory_bytes())
            }
        }
    }

    /// Whether an MPS daemon serves `device` (jobs there are MPS clients).
    pub fn is_mps(&self, device: DeviceRef) -> bool {
        match device {
            DeviceRef::Gpu(g) => self.gpu(g).is_some_and(|g| g.mps),
            DeviceRef::Mig { gpu, slot } => self.mig(gpu, slot).is_some_and(|m| m.mps),
        }
    }

    /// Extra slowdown of jobs on `device` (MIG instances are smaller than the GPU).
    pub fn device_slowdown(&self, device: DeviceRef) -> f64 {
        match device {
            DeviceRef::Gpu(_) => 1.0,
            DeviceRef::Mig { gpu, slot } => self.mig(gpu, slot).map_or(1.0, |m| m.slowdown),
        }
    }

    /// Every process running at virtual time `t`: static ones first (scenario order), then
    /// the live jobs whose device belongs to this scenario.
    pub fn processes_at(&self, t: f64, live: &[LiveJob]) -> Vec<RunningProcess> {
        let mut out = Vec::new();
        for g in &self.gpus {
            for p in &g.processes {
                if let Some(used) = p.memory.at(t) {
                    out.push(RunningProcess {
                        pid: p.pid,
                        name: p.name.clone(),
                        used,
                        mps: p.mps,
                        gpu: g.index,
                        mig: p.mig,
                        contends: p.contends,
                        live: false,
                    });
                }
            }
        }
        for j in live {
            let Some(device) = self.device_by_uuid(&j.device_uuid) else {
                continue;
            };
            out.push(RunningProcess {
                pid: j.pid,
                name: j.name.clone(),
                used: j.memory_bytes,
                mps: j.mps,
                gpu: device.gpu(),
                mig: match device {
                    DeviceRef::Mig { slot, .. } => Some(slot),
                    DeviceRef::Gpu(_) => None,
                },
                contends: true,
                live: true,
            });
        }
        out
    }

    /// Mean activity (0..1) of `device` over `[a, b]` virtual seconds. A MIG GPU without
    /// its own activity reports the SM-weighted mean of its instances.
    pub fn activity_mean(&self, device: DeviceRef, kind: ActivityKind, a: f64, b: f64) -> f64 {
        let of = |act: &Activity| act.series(kind).mean(a, b);
        match device {
            DeviceRef::Mig { gpu, slot } => self.mig(gpu, slot).map_or(0.0, |m| of(&m.activity)),
            DeviceRef::Gpu(g) => {
                let Some(g) = self.gpu(g) else {
                    return 0.0;
                };
                if let Some(act) = &g.activity {
                    return of(act);
                }
                let sm = g.sm_count.max(1) as f64;
                g.migs
                    .iter()
                    .map(|m| of(&m.activity) * m.profile.sm_count as f64 / sm)
                    .sum::<f64>()
                    .min(1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIG_SCENARIO: &str = r#"
driver_version = "580.95.05"
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-a"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mig_mode = true
mig_profiles = "h100-80gb"
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-one"
gpu_instance_id = 1
graphics_active = 0.5
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-two"
gpu_instance_id = 2
graphics_active = [[0, 0.0], [10, 1.0]]
[[gpu.process]]
pid = 4194400
mig = "MIG-two"
memory = [[0, "1GiB"], [10, "2GiB"]]
"#;

    #[test]
    fn resolves_uuids_capacity_and_processes() {
        let s = Scenario::from_toml(MIG_SCENARIO, "test").unwrap();
        let two = s.device_by_uuid("MIG-two").unwrap();
        assert_eq!(two, DeviceRef::Mig { gpu: 0, slot: 1 });
        assert_eq!(s.device_by_uuid("GPU-a"), Some(DeviceRef::Gpu(0)));
        assert_eq!(s.device_by_uuid("nope"), None);
        assert_eq!(s.capacity(two), 40448 << 20);
        assert_eq!(s.mig(0, 1).unwrap().placement_start, 4);
        let live = [LiveJob {
            pid: 7,
            start_ticks: None,
            device_uuid: "MIG-one".into(),
            memory_bytes: 5,
            name: "python3".into(),
            mps: false,
            workload: "w".into(),
            memory_limit_bytes: None,
        }];
        let procs = s.processes_at(5.0, &live);
        assert_eq!(procs.len(), 2);
        assert_eq!(procs[0].used, (1 << 30) + (1 << 29));
        assert!(
            procs[0].on(two)
                && procs[0].on(DeviceRef::Gpu(0))
                && !procs[0].exactly_on(DeviceRef::Gpu(0))
        );
        assert_eq!(procs[1].mig, Some(0));
        assert!(s.processes_at(11.0, &[]).is_empty());
    }

    #[test]
    fn gpu_activity_is_derived_from_instances() {
        let s = Scenario::from_toml(MIG_SCENARIO, "test").unwrap();
        let one = s.activity_mean(
            DeviceRef::Mig { gpu: 0, slot: 0 },
            ActivityKind::Graphics,
            0.0,
            10.0,
        );
        assert_eq!(one, 0.5);
        let two = s.activity_mean(
            DeviceRef::Mig { gpu: 0, slot: 1 },
            ActivityKind::Graphics,
            0.0,
            10.0,
        );
        assert!((two - 0.5).abs() < 1e-12);
        let whole = s.activity_mean(DeviceRef::Gpu(0), ActivityKind::Graphics, 0.0, 10.0);
        assert!((whole - 0.5 * 120.0 / 132.0).abs() < 1e-12, "{whole}");
    }
}
