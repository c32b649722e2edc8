//! Device memory (`nvmlDeviceGetMemoryInfo`, `_v2`). A GPU's used memory is the sum of all
//! its processes (MIG instances included); a MIG device's total is its profile's memory and
//! its used memory the sum of its processes. The v2 struct reports the driver's reserve
//! separately; v1's `used` includes it, as NVML does.

use crate::call::{Ctx, Target, call};
use crate::codes::{ARGUMENT_VERSION_MISMATCH, INVALID_ARGUMENT, Ret};
use crate::out::{InOut, Out};
use headroom_fake::DeviceRef;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlMemory_t, nvmlMemory_v2_t, nvmlReturn_t};

/// `NVML_STRUCT_VERSION(Memory, 2)`.
const MEMORY_V2_VERSION: u32 = (std::mem::size_of::<nvmlMemory_v2_t>() as u32) | (2 << 24);

/// (total, reserved, used by processes) of the call's device.
fn memory(ctx: &Ctx) -> Result<(u64, u64, u64), Ret> {
    let device = ctx.device()?;
    let s = ctx.scenario();
    let used: u64 = ctx
        .processes()
        .iter()
        .filter(|p| p.on(device))
        .map(|p| p.used)
        .sum();
    match device {
        DeviceRef::Gpu(g) => {
            let g = s.gpu(g).ok_or(INVALID_ARGUMENT)?;
            Ok((g.memory_total, g.memory_reserved, used))
        }
        DeviceRef::Mig { .. } => Ok((s.capacity(device), 0, used)),
    }
}

/// # Safety
/// `memory` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    memory_out: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(memory_out) };
    call("nvmlDeviceGetMemoryInfo", Target::Device(device), |ctx| {
        if out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let (total, reserved, used) = memory(ctx)?;
        let used = (used + reserved).min(total);
        out.set(nvmlMemory_t {
            total,
            free: total - used,
            used,
        })
    })
}

/// # Safety
/// `memory` is null or points to an `nvmlMemory_v2_t` whose `version` is set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory_out: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above. Only `version` is read, and it must be set.
    let version = unsafe { InOut::new(memory_out.cast::<u32>()) }.get();
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(memory_out) };
    call(
        "nvmlDeviceGetMemoryInfo_v2",
        Target::Device(device),
        |ctx| {
            if version? != MEMORY_V2_VERSION {
                return Err(ARGUMENT_VERSION_MISMATCH);
            }
            let (total, reserved, used) = memory(ctx)?;
            let used = used.min(total - reserved);
            out.set(nvmlMemory_v2_t {
                version: MEMORY_V2_VERSION,
                total,
                reserved,
                free: total - reserved - used,
                used,
            })
        },
    )
}
