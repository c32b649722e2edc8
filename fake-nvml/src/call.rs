//! The common path of every exported function: find the instance (`UNINITIALIZED` before
//! `nvmlInit`), decode the device handle (`INVALID_ARGUMENT` if it names nothing), apply an
//! injected `[[fault]]` (hang, then error), run the body, and turn a panic into
//! `NVML_ERROR_UNKNOWN` instead of unwinding into C.

use crate::codes::{ApiResult, INSUFFICIENT_SIZE, INVALID_ARGUMENT, Ret, SUCCESS, UNKNOWN};
use crate::handle;
use crate::runtime::{self, Instance};
use headroom_fake::{DeviceRef, RunningProcess, Scenario, faults};
use nvml_wrapper_sys::bindings::nvmlDevice_t;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

/// What a call is about, for handle decoding and fault matching.
pub(crate) enum Target {
    /// Not about a device.
    None,
    /// A device handle the caller passed.
    Device(nvmlDevice_t),
    /// A GPU by index (`nvmlDeviceGetHandleByIndex_v2`); faults match only if it exists.
    GpuIndex(u32),
    /// A GPU found some other way (`nvmlDeviceGetHandleByUUID`).
    Found(Option<DeviceRef>),
}

/// Calls whose injected `INSUFFICIENT_SIZE` means "the list grew by one since the count".
const LIST_CALLS: &[&str] = &[
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetMPSComputeRunningProcesses_v3",
];

/// An injected `INSUFFICIENT_SIZE` on a process list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFault {
    None,
    /// A fetch needs one entry more than the count said (a retry succeeds).
    GrowByOne,
    /// Every count and fetch answers `INSUFFICIENT_SIZE` with a count one larger than asked.
    Always,
}

/// What an API body gets.
pub(crate) struct Ctx {
    pub inst: Arc<Instance>,
    /// Virtual seconds when the call is answered (after any injected hang).
    pub now: f64,
    /// The decoded device (`Target::Device` and `Target::Found` calls).
    pub device: Option<DeviceRef>,
    /// An injected `INSUFFICIENT_SIZE` on a list call.
    pub grow_list: ListFault,
}

impl Ctx {
    pub(crate) fn scenario(&self) -> &Scenario {
        &self.inst.scenario
    }

    /// The decoded device handle (always set for `Target::Device` calls).
    pub(crate) fn device(&self) -> Result<DeviceRef, Ret> {
        self.device.ok_or(INVALID_ARGUMENT)
    }

    /// Every process running now.
    pub(crate) fn processes(&self) -> Vec<RunningProcess> {
        self.inst.processes_at(self.now)
    }
}

/// Runs `body` for NVML function `name` and returns its NVML code.
pub(crate) fn call(
    name: &'static str,
    target: Target,
    body: impl FnOnce(&Ctx) -> ApiResult,
) -> Ret {
    log_call(name);
    let run = || -> ApiResult {
        let inst = runtime::instance()?;
        let device = match &target {
            Target::Device(h) => {
                Some(handle::decode_device(&inst.scenario, *h).ok_or(INVALID_ARGUMENT)?)
            }
            Target::Found(d) => *d,
            Target::None | Target::GpuIndex(_) => None,
        };
        let fault_gpu = match target {
            Target::GpuIndex(i) => Some(i as usize).filter(|&i| i < inst.scenario.gpus.len()),
            _ => device.map(DeviceRef::gpu),
        };
        let grow_list = inject(&inst, name, fault_gpu)?;
        let now = inst.clock.now();
        let ctx = Ctx {
            inst,
            now,
            device,
            grow_list,
        };
        body(&ctx)
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => UNKNOWN,
    }
}

/// Environment variable: a file to which the fake appends the name of every NVML function
/// the first time this process calls it (the fault matrix checks it covers them all).
pub const ENV_CALL_LOG: &str = "HEADROOM_FAKE_CALL_LOG";

/// Appends `name` to the call log (`HEADROOM_FAKE_CALL_LOG`) the first time it is called.
pub(crate) fn log_call(name: &'static str) {
    use std::collections::HashSet;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};
    type Seen = Mutex<(HashSet<&'static str>, std::fs::File)>;
    static SEEN: OnceLock<Option<Seen>> = OnceLock::new();
    let log = SEEN.get_or_init(|| {
        let path = std::env::var_os(ENV_CALL_LOG)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Mutex::new((HashSet::new(), file)))
    });
    if let Some(m) = log {
        let mut guard = m.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, file) = &mut *guard;
        if seen.insert(name) {
            let _ = writeln!(file, "{name}");
        }
    }
}

/// Applies the first matching fault: sleeps its hang, then fails with its error. Returns
/// how a list call should pretend to have grown (injected `INSUFFICIENT_SIZE`).
pub(crate) fn inject(inst: &Instance, name: &str, gpu: Option<usize>) -> Result<ListFault, Ret> {
    let Some(fault) = faults::find(&inst.scenario.faults, name, gpu, inst.clock.now()) else {
        return Ok(ListFault::None);
    };
    if fault.hang_ms > 0 {
        std::thread::sleep(Duration::from_millis(fault.hang_ms));
    }
    match fault.error {
        None => Ok(ListFault::None),
        Some(e) if e.code == INSUFFICIENT_SIZE && LIST_CALLS.contains(&name) => {
            Ok(if fault.persistent {
                ListFault::Always
            } else {
                ListFault::GrowByOne
            })
        }
        Some(e) => Err(e.code),
    }
}
