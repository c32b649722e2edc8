//! The library's one instance: loaded at the first `nvmlInit`, shared by every later
//! `nvmlInit` (ref-counted, as in NVML; loading the same library path twice gives the same
//! instance because the dynamic loader maps it once) and dropped at the last `nvmlShutdown`.
//! It holds the scenario, the virtual clock, the state directory with the live jobs, and
//! the GPM samples and event sets handed out.

use crate::codes::{DRIVER_NOT_LOADED, Ret, UNINITIALIZED, UNKNOWN};
use headroom_fake::xid::EventKey;
use headroom_fake::{Clock, DeviceRef, RunningProcess, Scenario, StateDir};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A GPM sample: which device it was taken on and when (virtual seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub taken: Option<(DeviceRef, f64)>,
}

/// An event set: which event types each GPU registered, and the last event delivered.
#[derive(Debug, Clone)]
pub(crate) struct EventSet {
    pub types_per_gpu: Vec<u64>,
    pub cursor: Option<EventKey>,
}

/// Handles given out, by id.
#[derive(Debug)]
pub(crate) struct Table<T> {
    next: usize,
    items: HashMap<usize, T>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            next: 1,
            items: HashMap::new(),
        }
    }
}

impl<T> Table<T> {
    pub(crate) fn insert(&mut self, item: T) -> usize {
        let id = self.next;
        self.next += 1;
        self.items.insert(id, item);
        id
    }

    pub(crate) fn get_mut(&mut self, id: usize) -> Option<&mut T> {
        self.items.get_mut(&id)
    }

    pub(crate) fn get(&self, id: usize) -> Option<&T> {
        self.items.get(&id)
    }

    pub(crate) fn remove(&mut self, id: usize) -> Option<T> {
        self.items.remove(&id)
    }
}

/// The loaded scenario and everything handed out from it.
#[derive(Debug)]
pub(crate) struct Instance {
    pub scenario: Scenario,
    pub clock: Clock,
    pub state: Option<StateDir>,
    pub samples: Mutex<Table<Sample>>,
    pub event_sets: Mutex<Table<EventSet>>,
}

impl Instance {
    /// Every process at virtual time `t`: the scenario's plus the live jobs.
    pub(crate) fn processes_at(&self, t: f64) -> Vec<RunningProcess> {
        let live = match &self.state {
            Some(state) => state.jobs().unwrap_or_default(),
            None => Vec::new(),
        };
        self.scenario.processes_at(t, &live)
    }
}

#[derive(Default)]
struct Global {
    refcount: u32,
    instance: Option<Arc<Instance>>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    refcount: 0,
    instance: None,
});

/// Locks `m`, ignoring poisoning (a panic is caught at the FFI boundary and reported as
/// `NVML_ERROR_UNKNOWN`; the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current instance, or `UNINITIALIZED`.
pub(crate) fn instance() -> Result<Arc<Instance>, Ret> {
    lock(&GLOBAL).instance.clone().ok_or(UNINITIALIZED)
}

fn load() -> Result<Instance, Ret> {
    let headroom_fake::World {
        scenario,
        clock,
        state,
    } = headroom_fake::World::from_env().map_err(|e| {
        eprintln!("headroom-fake-nvml: {e}");
        match e {
            headroom_fake::WorldError::NoScenario => DRIVER_NOT_LOADED,
            headroom_fake::WorldError::Invalid(_) => UNKNOWN,
        }
    })?;
    Ok(Instance {
        scenario,
        clock,
        state,
        samples: Mutex::default(),
        event_sets: Mutex::default(),
    })
}

/// `nvmlInit`: loads the scenario on the first call, counts later ones. `check` may refuse
/// the new reference (an injected init fault, possibly after a hang) before it is counted;
/// it runs without holding the library lock.
pub(crate) fn init(check: impl FnOnce(&Instance) -> Result<(), Ret>) -> Result<(), Ret> {
    let existing = lock(&GLOBAL).instance.clone();
    let inst = match existing {
        Some(i) => i,
        None => Arc::new(load()?),
    };
    check(&inst)?;
    let mut g = lock(&GLOBAL);
    if g.instance.is_none() {
        g.instance = Some(inst);
    }
    g.refcount += 1;
    Ok(())
}

/// `nvmlShutdown`: drops one reference; the last one unloads the instance.
pub(crate) fn shutdown() -> Result<(), Ret> {
    let mut g = lock(&GLOBAL);
    if g.refcount == 0 {
        return Err(UNINITIALIZED);
    }
    g.refcount -= 1;
    if g.refcount == 0 {
        g.instance = None;
    }
    Ok(())
}
