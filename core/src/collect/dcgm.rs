//! The `dcgm` collector (the DCGM backend's engine activity): DCGM's profiling fields per GPU
//! and per MIG GPU instance, where NVML's GPM is missing (A100) or a host engine is already
//! running. It replaces the `gpm` collector when the DCGM backend is chosen.
//!
//! Fields (all entities in one watch, read with one `dcgmEntitiesGetLatestValues` per cycle):
//! `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, `DCGM_FI_PROF_SM_ACTIVE`, `DCGM_FI_PROF_PIPE_TENSOR_ACTIVE`,
//! `DCGM_FI_PROF_DRAM_ACTIVE` → `Activity` of the GPU or of every compute instance of the GPU
//! instance; `DCGM_FI_DEV_FB_USED` / `DCGM_FI_DEV_FB_FREE` (MiB) → memory of a GPU or MIG
//! instance only where NVML left it unknown; `DCGM_FI_DEV_UUID` matches DCGM's GPU ids to
//! NVML's GPUs. GPU instances are matched through DCGM's MIG hierarchy (GPU UUID + NVML
//! GPU-instance id): DCGM's entity ids are its own and never taken for NVML's.
//!
//! Calls per cycle: dcgmGetAllSupportedDevices, dcgmGetGpuInstanceHierarchy, dcgmUpdateAllFields
//! (embedded engine only), dcgmEntitiesGetLatestValues; dcgmGroupCreate / dcgmGroupAddEntity /
//! dcgmFieldGroupCreate / dcgmWatchFields when the set of entities changes. A value that is
//! blank, not supported or not sampled yet is absent, not an error. A lost connection to a
//! standalone host engine is an error for this cycle and is re-established on the next.

use super::{Collector, Kind, Outcome, Topology};
use crate::dcgm::{DcgmBackend, DcgmError, RawValue, Value, Watch, entity, field, status};
use crate::model::{Memory, Snapshot};
use crate::nvml::NvmlBackend;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Fields read for every entity (unsupported ones come back blank).
const FIELDS: [u16; 7] = [
    field::DEV_UUID,
    field::DEV_FB_USED,
    field::DEV_FB_FREE,
    field::PROF_GR_ENGINE_ACTIVE,
    field::PROF_SM_ACTIVE,
    field::PROF_PIPE_TENSOR_ACTIVE,
    field::PROF_DRAM_ACTIVE,
];

const MIB: u64 = 1 << 20;

/// Reads DCGM's fields into the snapshot.
#[derive(Debug)]
pub struct DcgmCollector {
    dcgm: DcgmBackend,
    interval: Duration,
    watch: Option<Watch>,
}

/// Where one GPU-instance entity sits: (GPU UUID, NVML GPU-instance id).
type GiPlace = (String, u32);

/// The entities to watch, and where each GPU-instance entity sits.
type Entities = (Vec<(u32, u32)>, HashMap<u32, GiPlace>);

impl DcgmCollector {
    /// `interval` is the watch's update frequency (the exporter's collection interval).
    pub fn new(dcgm: DcgmBackend, interval: Duration) -> Self {
        Self {
            dcgm,
            interval,
            watch: None,
        }
    }

    fn fail(&mut self, out: &mut Outcome, e: &DcgmError) {
        out.errors.push(e.to_call_error(None));
        if e.connection_lost() {
            // The engine's groups went with the connection.
            self.watch = None;
            self.dcgm.reset();
        }
    }

    /// GPU entities and GPU-instance entities with their NVML coordinates.
    fn entities(&mut self) -> Result<Entities, DcgmError> {
        let gpus = self.dcgm.gpus()?;
        let hierarchy = self.dcgm.mig_hierarchy()?;
        let mut list: Vec<(u32, u32)> = gpus.iter().map(|g| (entity::GPU, *g)).collect();
        let mut places = HashMap::new();
        for e in hierarchy
            .into_iter()
            .filter(|e| e.entity_group == entity::GPU_I)
        {
            list.push((entity::GPU_I, e.entity_id));
            places.insert(e.entity_id, (e.gpu_uuid, e.nvml_instance_id));
        }
        Ok((list, places))
    }

    fn ensure_watch(&mut self, entities: &[(u32, u32)]) -> Result<(), DcgmError> {
        if self.watch.as_ref().is_some_and(|w| w.entities == entities) {
            return Ok(());
        }
        if let Some(old) = self.watch.take() {
            self.dcgm.unwatch(old);
        }
        if entities.is_empty() {
            return Ok(());
        }
        self.watch = Some(self.dcgm.watch(entities, &FIELDS, self.interval)?);
        Ok(())
    }
}

fn ratio(v: &RawValue) -> Option<f64> {
    match v.value {
        Value::F64(x) if v.status == status::OK && x.is_finite() => Some(x.clamp(0.0, 1.0)),
        _ => None,
    }
}

fn mib(v: Option<&RawValue>) -> Option<u64> {
    match v?.value {
        Value::I64(x) if x >= 0 => Some(x as u64 * MIB),
        _ => None,
    }
}

/// Whether a value's status is a failure worth reporting (not merely absent).
fn failed(v: &RawValue) -> bool {
    !matches!(v.status, status::OK | status::NO_DATA | status::STALE_DATA)
        && !crate::dcgm::status_kind(v.status, "").eq(&crate::nvml::ErrorKind::NotSupported)
}

/// Memory from FB used/free (MiB): total = used + free, nothing known reserved.
fn memory(values: &HashMap<u16, &RawValue>) -> Option<Memory> {
    let used = mib(values.get(&field::DEV_FB_USED).copied())?;
    let free = mib(values.get(&field::DEV_FB_FREE).copied())?;
    Some(Memory {
        total: used.saturating_add(free),
        reserved: 0,
        used,
    })
}

fn activity(values: &HashMap<u16, &RawValue>) -> crate::model::Activity {
    let get = |f: u16| values.get(&f).and_then(|v| ratio(v));
    crate::model::Activity {
        graphics: get(field::PROF_GR_ENGINE_ACTIVE),
        sm: get(field::PROF_SM_ACTIVE),
        tensor: get(field::PROF_PIPE_TENSOR_ACTIVE),
        dram: get(field::PROF_DRAM_ACTIVE),
    }
}

impl<'n> Collector<'n> for DcgmCollector {
    fn kind(&self) -> Kind {
        Kind::Dcgm
    }

    fn collect(
        &mut self,
        _backend: &'n NvmlBackend,
        _topology: &Topology<'n>,
        snapshot: &mut Snapshot,
    ) -> Outcome {
        let mut out = Outcome::default();
        let (entities, places) = match self.entities() {
            Ok(x) => x,
            Err(e) => {
                self.fail(&mut out, &e);
                return out;
            }
        };
        if let Err(e) = self.ensure_watch(&entities) {
            self.fail(&mut out, &e);
            return out;
        }
        let Some(watch) = self.watch.clone() else {
            return out;
        };
        if let Err(e) = self.dcgm.update() {
            self.fail(&mut out, &e);
            return out;
        }
        let values = match self.dcgm.latest(&watch) {
            Ok(v) => v,
            Err(e) => {
                if e.status() == Some(status::NOT_WATCHED) {
                    self.watch = None;
                }
                self.fail(&mut out, &e);
                return out;
            }
        };
        // Group the values by entity (ordered, so errors come in a stable order and the
        // sampler's "log when it changes" does not flap).
        let mut by_entity: BTreeMap<(u32, u32), HashMap<u16, &RawValue>> = BTreeMap::new();
        for v in &values {
            by_entity
                .entry((v.entity_group, v.entity_id))
                .or_default()
                .insert(v.field, v);
        }
        let mut lost_watch = false;
        for (&(group, id), fields) in &by_entity {
            if let Some(bad) = fields.values().find(|v| failed(v)) {
                lost_watch |= bad.status == status::NOT_WATCHED;
                // DCGM's ids, named as such (they are not NVML's indexes).
                let target = match group {
                    entity::GPU => format!("dcgm-gpu{id}"),
                    _ => format!("dcgm-gi{id}"),
                };
                let text = self.dcgm.status_text(bad.status);
                out.errors.push(crate::nvml::CallError {
                    call: "dcgmEntitiesGetLatestValues",
                    target: Some(target),
                    kind: crate::dcgm::status_kind(bad.status, &text),
                });
            }
            match group {
                entity::GPU => {
                    let uuid = match fields.get(&field::DEV_UUID).map(|v| &v.value) {
                        Some(Value::Str(u)) => u.clone(),
                        _ => continue,
                    };
                    let Some(gpu) = snapshot.gpus.iter_mut().find(|g| g.uuid == uuid) else {
                        continue;
                    };
                    let act = activity(fields);
                    if act != crate::model::Activity::default() {
                        gpu.activity = act;
                    }
                    if gpu.memory.is_none() {
                        gpu.memory = memory(fields);
                    }
                }
                entity::GPU_I => {
                    let Some((uuid, gi)) = places.get(&id) else {
                        continue;
                    };
                    let Some(gpu) = snapshot.gpus.iter_mut().find(|g| &g.uuid == uuid) else {
                        continue;
                    };
                    let act = activity(fields);
                    let mem = memory(fields);
                    for m in gpu
                        .mig_instances
                        .iter_mut()
                        .filter(|m| m.gpu_instance_id == Some(*gi))
                    {
                        if act != crate::model::Activity::default() {
                            m.activity = act;
                        }
                        if m.memory.is_none() {
                            m.memory = mem;
                        }
                    }
                }
                _ => {}
            }
        }
        if lost_watch {
            self.watch = None;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(field: u16, status: i32, value: Value) -> RawValue {
        RawValue {
            entity_group: entity::GPU,
            entity_id: 0,
            field,
            status,
            value,
        }
    }

    #[test]
    fn absent_is_not_failed() {
        assert!(!failed(&v(1001, status::OK, Value::F64(0.5))));
        assert!(!failed(&v(1001, status::NO_DATA, Value::Blank)));
        assert!(!failed(&v(
            1001,
            dcgm_sys::DCGM_ST_NOT_SUPPORTED,
            Value::Blank
        )));
        assert!(failed(&v(1001, status::NOT_WATCHED, Value::Blank)));
        assert!(failed(&v(
            1001,
            dcgm_sys::DCGM_ST_NO_PERMISSION,
            Value::Blank
        )));
    }

    #[test]
    fn ratios_and_memory() {
        let a = v(field::PROF_DRAM_ACTIVE, status::OK, Value::F64(1.2));
        assert_eq!(ratio(&a), Some(1.0));
        assert_eq!(ratio(&v(1001, status::OK, Value::Blank)), None);
        let used = v(field::DEV_FB_USED, status::OK, Value::I64(100));
        let free = v(field::DEV_FB_FREE, status::OK, Value::I64(28));
        let mut m = HashMap::new();
        m.insert(field::DEV_FB_USED, &used);
        assert_eq!(memory(&m), None);
        m.insert(field::DEV_FB_FREE, &free);
        let mem = memory(&m).unwrap();
        assert_eq!((mem.total, mem.used), (128 * MIB, 100 * MIB));
    }
}
