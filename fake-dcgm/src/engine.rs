//! The fake host engine, in safe Rust: the scenario and its clock (loaded at the first
//! `dcgmInit`, ref-counted), the handles (embedded engines and connections), entity groups,
//! field groups and watches, and the value of each (entity, field) at a virtual moment.
//!
//! Entities: GPU id = the scenario's GPU index; each MIG instance is a GPU-instance entity and
//! a compute-instance entity, both with id `gpu * 8 + slot` — deliberately not NVML's
//! GPU-instance ids, so callers must map through the hierarchy.

use dcgm_sys as sys;
use headroom_fake::faults::find;
use headroom_fake::nvml_error::NvmlError;
use headroom_fake::scenario::ActivityKind;
use headroom_fake::{Clock, DeviceRef, Scenario, StateDir};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub type Status = i32;
pub type Entity = (u32, u32);

/// One value as `dcgmFieldValue_v2` carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    F64(f64),
    I64(i64),
    Str(String),
}

#[derive(Debug, Default)]
struct Engine {
    manual: bool,
    groups: HashMap<usize, Vec<Entity>>,
    field_groups: HashMap<usize, Vec<u16>>,
    /// (group, field group, update period in seconds).
    watches: Vec<(usize, usize, f64)>,
    /// Virtual time of the last `dcgmUpdateAllFields` after the last watch (manual mode).
    updated_at: Option<f64>,
}

#[derive(Debug)]
pub struct Inst {
    pub scenario: Scenario,
    clock: Clock,
    state: Option<StateDir>,
    engines: HashMap<usize, Engine>,
    /// Handles that were stopped or disconnected.
    closed: Vec<usize>,
    next_id: usize,
}

#[derive(Debug, Default)]
struct Global {
    refcount: u32,
    inst: Option<Inst>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    refcount: 0,
    inst: None,
});

fn global() -> MutexGuard<'static, Global> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The DCGM status the fake answers for a scenario fault's NVML error name.
pub fn status_of(e: &NvmlError) -> Status {
    match e.name {
        "UNINITIALIZED" => sys::DCGM_ST_UNINITIALIZED,
        "INVALID_ARGUMENT" => sys::DCGM_ST_BADPARAM,
        "NOT_SUPPORTED" => sys::DCGM_ST_NOT_SUPPORTED,
        "NO_PERMISSION" => sys::DCGM_ST_NO_PERMISSION,
        "TIMEOUT" => sys::DCGM_ST_TIMEOUT,
        "GPU_IS_LOST" => sys::DCGM_ST_GPU_IS_LOST,
        "NOT_FOUND" => sys::DCGM_ST_INSTANCE_NOT_FOUND,
        "INSUFFICIENT_SIZE" => sys::DCGM_ST_INSUFFICIENT_SIZE,
        _ => sys::DCGM_ST_GENERIC_ERROR,
    }
}

pub fn init() -> Result<(), Status> {
    let mut g = global();
    if g.inst.is_none() {
        g.inst = Some(load()?);
    }
    g.refcount += 1;
    Ok(())
}

pub fn shutdown() -> Result<(), Status> {
    let mut g = global();
    if g.refcount == 0 {
        return Err(sys::DCGM_ST_UNINITIALIZED);
    }
    g.refcount -= 1;
    if g.refcount == 0 {
        g.inst = None;
    }
    Ok(())
}

fn load() -> Result<Inst, Status> {
    let headroom_fake::World {
        scenario,
        clock,
        state,
    } = headroom_fake::World::from_env().map_err(|e| {
        eprintln!("headroom-fake-dcgm: {e}");
        sys::DCGM_ST_INIT_ERROR
    })?;
    Ok(Inst {
        scenario,
        clock,
        state,
        engines: HashMap::new(),
        closed: Vec::new(),
        next_id: 1,
    })
}

/// Runs `f` on the loaded instance, after applying a scenario fault for `call` (a hang, then
/// its error). `UNINITIALIZED` before `dcgmInit`.
pub fn with<T>(call: &str, f: impl FnOnce(&mut Inst) -> Result<T, Status>) -> Result<T, Status> {
    let fault = {
        let g = global();
        let inst = g.inst.as_ref().ok_or(sys::DCGM_ST_UNINITIALIZED)?;
        find(&inst.scenario.faults, call, None, inst.clock.now()).cloned()
    };
    if let Some(fault) = fault {
        if fault.hang_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(fault.hang_ms));
        }
        if let Some(e) = fault.error {
            return Err(status_of(&e));
        }
    }
    let mut g = global();
    let inst = g.inst.as_mut().ok_or(sys::DCGM_ST_UNINITIALIZED)?;
    f(inst)
}

impl Inst {
    fn engine(&mut self, handle: usize) -> Result<&mut Engine, Status> {
        if self.closed.contains(&handle) {
            return Err(sys::DCGM_ST_CONNECTION_NOT_VALID);
        }
        self.engines.get_mut(&handle).ok_or(sys::DCGM_ST_BADPARAM)
    }

    fn id(&mut self) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn open(&mut self, manual: bool) -> usize {
        let id = self.id();
        self.engines.insert(
            id,
            Engine {
                manual,
                ..Engine::default()
            },
        );
        id
    }

    pub fn close(&mut self, handle: usize) -> Result<(), Status> {
        self.engine(handle)?;
        self.engines.remove(&handle);
        self.closed.push(handle);
        Ok(())
    }

    pub fn gpu_ids(&mut self, handle: usize) -> Result<Vec<u32>, Status> {
        self.engine(handle)?;
        Ok((0..self.scenario.gpus.len() as u32).collect())
    }

    /// Whether `e` exists in the scenario.
    fn device(&self, e: Entity) -> Option<DeviceRef> {
        let (group, id) = e;
        match group {
            sys::DCGM_FE_GPU => {
                let g = id as usize;
                self.scenario
                    .has(DeviceRef::Gpu(g))
                    .then_some(DeviceRef::Gpu(g))
            }
            sys::DCGM_FE_GPU_I | sys::DCGM_FE_GPU_CI => {
                let d = DeviceRef::Mig {
                    gpu: (id / 8) as usize,
                    slot: (id % 8) as usize,
                };
                self.scenario.has(d).then_some(d)
            }
            _ => None,
        }
    }

    pub fn group_create(&mut self, handle: usize, all_gpus: bool) -> Result<usize, Status> {
        let gpus: Vec<Entity> = (0..self.scenario.gpus.len() as u32)
            .map(|g| (sys::DCGM_FE_GPU, g))
            .collect();
        let id = self.id();
        let e = self.engine(handle)?;
        e.groups
            .insert(id, if all_gpus { gpus } else { Vec::new() });
        Ok(id)
    }

    pub fn group_add(&mut self, handle: usize, group: usize, ent: Entity) -> Result<(), Status> {
        if self.device(ent).is_none() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        let e = self.engine(handle)?;
        let g = e.groups.get_mut(&group).ok_or(sys::DCGM_ST_BADPARAM)?;
        if !g.contains(&ent) {
            g.push(ent);
        }
        Ok(())
    }

    pub fn group_destroy(&mut self, handle: usize, group: usize) -> Result<(), Status> {
        let e = self.engine(handle)?;
        e.groups.remove(&group).ok_or(sys::DCGM_ST_BADPARAM)?;
        e.watches.retain(|w| w.0 != group);
        Ok(())
    }

    pub fn field_group_create(&mut self, handle: usize, fields: Vec<u16>) -> Result<usize, Status> {
        let id = self.id();
        self.engine(handle)?.field_groups.insert(id, fields);
        Ok(id)
    }

    pub fn field_group_destroy(&mut self, handle: usize, fg: usize) -> Result<(), Status> {
        let e = self.engine(handle)?;
        e.field_groups.remove(&fg).ok_or(sys::DCGM_ST_BADPARAM)?;
        e.watches.retain(|w| w.1 != fg);
        Ok(())
    }

    pub fn watch(
        &mut self,
        handle: usize,
        group: usize,
        fg: usize,
        every_us: i64,
    ) -> Result<(), Status> {
        let e = self.engine(handle)?;
        if every_us <= 0 || !e.groups.contains_key(&group) || !e.field_groups.contains_key(&fg) {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        e.watches.retain(|w| (w.0, w.1) != (group, fg));
        e.watches.push((group, fg, every_us as f64 / 1e6));
        e.updated_at = None;
        Ok(())
    }

    pub fn unwatch(&mut self, handle: usize, group: usize, fg: usize) -> Result<(), Status> {
        let e = self.engine(handle)?;
        let before = e.watches.len();
        e.watches.retain(|w| (w.0, w.1) != (group, fg));
        if e.watches.len() == before {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        Ok(())
    }

    pub fn update_all(&mut self, handle: usize) -> Result<(), Status> {
        let now = self.clock.now();
        self.engine(handle)?.updated_at = Some(now);
        Ok(())
    }

    /// GI and CI hierarchy entries: (entity, parent, gpu uuid, gpu index, GI id, CI id,
    /// profile slices).
    pub fn hierarchy(&mut self, handle: usize) -> Result<Vec<HierarchyEntry>, Status> {
        self.engine(handle)?;
        let mut out = Vec::new();
        for g in &self.scenario.gpus {
            for m in &g.migs {
                let id = (g.index * 8 + m.slot) as u32;
                let common = HierarchyEntry {
                    entity: (sys::DCGM_FE_GPU_I, id),
                    parent: (sys::DCGM_FE_GPU, g.index as u32),
                    gpu_uuid: g.uuid.clone(),
                    gpu_index: g.index as u32,
                    instance_id: m.gpu_instance_id,
                    compute_instance_id: u32::MAX,
                    profile_id: m.profile.id,
                    slices: m.profile.slices,
                };
                out.push(HierarchyEntry {
                    entity: (sys::DCGM_FE_GPU_CI, id),
                    parent: (sys::DCGM_FE_GPU_I, id),
                    compute_instance_id: m.compute_instance_id,
                    ..common.clone()
                });
                out.insert(out.len() - 1, common);
            }
        }
        Ok(out)
    }

    /// The value of `field` of `ent` (or the per-value status), for a caller on `handle`.
    pub fn value(&mut self, handle: usize, ent: Entity, field: u16) -> Result<(Val, u8), Status> {
        let device = self.device(ent).ok_or(sys::DCGM_ST_BADPARAM)?;
        let now = self.clock.now();
        let engine = self.engine(handle)?;
        let period = engine
            .watches
            .iter()
            .filter(|(g, fg, _)| {
                engine.groups.get(g).is_some_and(|es| es.contains(&ent))
                    && engine
                        .field_groups
                        .get(fg)
                        .is_some_and(|fs| fs.contains(&field))
            })
            .map(|w| w.2)
            .reduce(f64::min)
            .ok_or(sys::DCGM_ST_NOT_WATCHED)?;
        let t = if engine.manual {
            engine.updated_at.ok_or(sys::DCGM_ST_NO_DATA)?
        } else {
            now
        };
        if let Some(fault) = find(
            &self.scenario.faults,
            "dcgmEntitiesGetLatestValues",
            Some(device.gpu()),
            t,
        ) && let Some(e) = fault.error
        {
            return Err(status_of(&e));
        }
        let s = &self.scenario;
        let gpu = s.gpu(device.gpu()).ok_or(sys::DCGM_ST_BADPARAM)?;
        let is_ci = ent.0 == sys::DCGM_FE_GPU_CI;
        let kind = match field {
            dcgm_sys::field::PROF_GR_ENGINE_ACTIVE => Some(ActivityKind::Graphics),
            dcgm_sys::field::PROF_SM_ACTIVE => Some(ActivityKind::Sm),
            dcgm_sys::field::PROF_PIPE_TENSOR_ACTIVE => Some(ActivityKind::Tensor),
            dcgm_sys::field::PROF_DRAM_ACTIVE => Some(ActivityKind::Dram),
            _ => None,
        };
        if let Some(kind) = kind {
            // DCGM profiles the GPU instances of a MIG GPU, not the GPU as a whole.
            if matches!(device, DeviceRef::Gpu(_)) && gpu.mig_mode {
                return Err(sys::DCGM_ST_NOT_SUPPORTED);
            }
            let from = (t - period.max(0.1)).max(0.0);
            return Ok((
                Val::F64(s.activity_mean(device, kind, from, t)),
                sys::DCGM_FT_DOUBLE,
            ));
        }
        if is_ci {
            return Err(sys::DCGM_ST_NOT_SUPPORTED);
        }
        let mib = |b: u64| Val::I64((b >> 20) as i64);
        let live = match &self.state {
            Some(st) => st.jobs().unwrap_or_default(),
            None => Vec::new(),
        };
        let used: u64 = s
            .processes_at(t, &live)
            .iter()
            .filter(|p| p.on(device))
            .map(|p| p.used)
            .sum();
        let (total, reserved) = match device {
            DeviceRef::Gpu(_) => (gpu.memory_total, gpu.memory_reserved),
            DeviceRef::Mig { .. } => (s.capacity(device), 0),
        };
        let used = used.min(total - reserved);
        match (field, device) {
            (dcgm_sys::field::DEV_UUID, DeviceRef::Gpu(_)) => {
                Ok((Val::Str(gpu.uuid.clone()), sys::DCGM_FT_STRING))
            }
            (dcgm_sys::field::DEV_FB_TOTAL, _) => Ok((mib(total), sys::DCGM_FT_INT64)),
            (dcgm_sys::field::DEV_FB_USED, _) => Ok((mib(used), sys::DCGM_FT_INT64)),
            (dcgm_sys::field::DEV_FB_FREE, _) => {
                Ok((mib(total - reserved - used), sys::DCGM_FT_INT64))
            }
            _ => Err(sys::DCGM_ST_NOT_SUPPORTED),
        }
    }

    /// Virtual microseconds of the values now (the manual engine's last update time).
    pub fn timestamp_us(&self, handle: usize) -> i64 {
        let t = self
            .engines
            .get(&handle)
            .and_then(|e| if e.manual { e.updated_at } else { None })
            .unwrap_or_else(|| self.clock.now());
        (t * 1e6) as i64
    }
}

/// One entry of the MIG hierarchy.
#[derive(Debug, Clone)]
pub struct HierarchyEntry {
    pub entity: Entity,
    pub parent: Entity,
    pub gpu_uuid: String,
    pub gpu_index: u32,
    pub instance_id: u32,
    pub compute_instance_id: u32,
    pub profile_id: u32,
    pub slices: u32,
}
