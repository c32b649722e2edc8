//! Events: Xid critical errors from the scenario's `[[xid]]` and `[[xid_storm]]`, delivered by
//! `nvmlEventSetWait_v2` once virtual time has passed them, each exactly once per event set,
//! in time order, starting from virtual time 0. An event set keeps only a cursor, so a storm
//! of any length costs it no memory. The timeout is in wall milliseconds.

use crate::call::{Target, call};
use crate::codes::{INVALID_ARGUMENT, NOT_SUPPORTED, TIMEOUT};
use crate::handle;
use crate::out::Out;
use crate::runtime::{EventSet, lock};
use headroom_fake::DeviceRef;
use nvml_wrapper_sys::bindings as b;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlEventSet_t, nvmlReturn_t};
use std::ffi::{c_uint, c_ulonglong};
use std::time::{Duration, Instant};

/// Event types a fake GPU accepts (only Xid events ever fire).
const SUPPORTED: u64 = (b::nvmlEventTypeSingleBitEccError
    | b::nvmlEventTypeDoubleBitEccError
    | b::nvmlEventTypePState
    | b::nvmlEventTypeXidCriticalError
    | b::nvmlEventTypeClock) as u64;
const XID: u64 = b::nvmlEventTypeXidCriticalError as u64;

/// # Safety
/// `set` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(set) };
    call("nvmlEventSetCreate", Target::None, |ctx| {
        if out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let id = lock(&ctx.inst.event_sets).insert(EventSet {
            types_per_gpu: vec![0; ctx.scenario().gpus.len()],
            cursor: None,
        });
        out.set(handle::event_set(id))
    })
}

/// # Safety
/// `event_types` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetSupportedEventTypes(
    device: nvmlDevice_t,
    event_types: *mut c_ulonglong,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(event_types) };
    call(
        "nvmlDeviceGetSupportedEventTypes",
        Target::Device(device),
        |ctx| match ctx.device()? {
            DeviceRef::Gpu(_) => out.set(SUPPORTED),
            DeviceRef::Mig { .. } => Err(NOT_SUPPORTED),
        },
    )
}

/// Registers `event_types` of a GPU (not a MIG device) with `set`.
///
/// # Safety
/// None beyond NVML's contract (opaque handles).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    event_types: c_ulonglong,
    set: nvmlEventSet_t,
) -> nvmlReturn_t {
    call("nvmlDeviceRegisterEvents", Target::Device(device), |ctx| {
        let DeviceRef::Gpu(g) = ctx.device()? else {
            return Err(NOT_SUPPORTED);
        };
        if event_types & !SUPPORTED != 0 {
            return Err(NOT_SUPPORTED);
        }
        let id = handle::event_set_id(set).ok_or(INVALID_ARGUMENT)?;
        let mut sets = lock(&ctx.inst.event_sets);
        let s = sets.get_mut(id).ok_or(INVALID_ARGUMENT)?;
        let types = s.types_per_gpu.get_mut(g).ok_or(INVALID_ARGUMENT)?;
        *types |= event_types;
        Ok(())
    })
}

/// The next Xid event of a registered GPU once virtual time reaches it, waiting up to
/// `timeoutms` wall milliseconds; `TIMEOUT` if none comes due.
///
/// # Safety
/// `data` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut b::nvmlEventData_t,
    timeoutms: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(data) };
    call("nvmlEventSetWait_v2", Target::None, |ctx| {
        if out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let id = handle::event_set_id(set).ok_or(INVALID_ARGUMENT)?;
        let deadline = Instant::now() + Duration::from_millis(timeoutms.into());
        let inst = &ctx.inst;
        loop {
            let (types, cursor) = {
                let sets = lock(&inst.event_sets);
                let s = sets.get(id).ok_or(INVALID_ARGUMENT)?;
                (s.types_per_gpu.clone(), s.cursor)
            };
            let wanted = |g: usize| types.get(g).is_some_and(|t| t & XID != 0);
            let next = inst.scenario.xids.next_after(cursor, wanted);
            let now = inst.clock.now();
            if let Some(ev) = next.filter(|ev| ev.key.t <= now) {
                let mut sets = lock(&inst.event_sets);
                let s = sets.get_mut(id).ok_or(INVALID_ARGUMENT)?;
                if s.cursor != cursor {
                    continue; // another thread took an event meanwhile
                }
                s.cursor = Some(ev.key);
                return out.set(b::nvmlEventData_t {
                    device: handle::device(DeviceRef::Gpu(ev.gpu)),
                    eventType: XID,
                    eventData: ev.xid,
                    gpuInstanceId: 0xFFFF_FFFF,
                    computeInstanceId: 0xFFFF_FFFF,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TIMEOUT);
            }
            // Sleep until the next event is due, the deadline, or 50 ms (the set may change).
            let until_next = next
                .and_then(|ev| inst.clock.wall_until(ev.key.t))
                .unwrap_or(left);
            std::thread::sleep(
                left.min(until_next)
                    .min(Duration::from_millis(50))
                    .max(Duration::from_micros(100)),
            );
        }
    })
}

/// # Safety
/// None beyond NVML's contract (opaque handles).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> nvmlReturn_t {
    call("nvmlEventSetFree", Target::None, |ctx| {
        let id = handle::event_set_id(set).ok_or(INVALID_ARGUMENT)?;
        lock(&ctx.inst.event_sets)
            .remove(id)
            .map(|_| ())
            .ok_or(INVALID_ARGUMENT)
    })
}
