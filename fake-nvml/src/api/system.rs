//! System queries and device discovery: versions, process names, device count, handles by
//! index and by uuid (GPU or MIG).

use crate::call::{Target, call};
use crate::codes::{INVALID_ARGUMENT, NOT_FOUND};
use crate::handle;
use crate::out::{Out, OutArray, c_str};
use headroom_fake::DeviceRef;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlReturn_t};
use std::ffi::{c_char, c_int, c_uint};

/// # Safety
/// `version` is null or writable for `length` chars.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut buf = unsafe { OutArray::new(version, length as usize) };
    call("nvmlSystemGetDriverVersion", Target::None, |ctx| {
        buf.put_str(&ctx.scenario().driver_version)
    })
}

/// `"<CUDA major>.<driver version>"`, e.g. `13.580.95.05`.
///
/// # Safety
/// `version` is null or writable for `length` chars.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut buf = unsafe { OutArray::new(version, length as usize) };
    call("nvmlSystemGetNVMLVersion", Target::None, |ctx| {
        let s = ctx.scenario();
        buf.put_str(&format!("{}.{}", s.cuda_version.major, s.driver_version))
    })
}

/// # Safety
/// `cuda_driver_version` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(
    cuda_driver_version: *mut c_int,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(cuda_driver_version) };
    call("nvmlSystemGetCudaDriverVersion_v2", Target::None, |ctx| {
        out.set(ctx.scenario().cuda_version.encoded())
    })
}

/// The name of a process the fake lists (static or live job), cropped to `length`;
/// `NOT_FOUND` for any other pid.
///
/// # Safety
/// `name` is null or writable for `length` chars.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetProcessName(
    pid: c_uint,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut buf = unsafe { OutArray::new(name, length as usize) };
    call("nvmlSystemGetProcessName", Target::None, |ctx| {
        if buf.is_null() || buf.capacity() == 0 {
            return Err(INVALID_ARGUMENT);
        }
        let procs = ctx.processes();
        let p = procs.iter().find(|p| p.pid == pid).ok_or(NOT_FOUND)?;
        buf.put_str_cropped(&p.name)
    })
}

/// # Safety
/// `device_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count: *mut c_uint) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(device_count) };
    call("nvmlDeviceGetCount_v2", Target::None, |ctx| {
        out.set(ctx.scenario().gpus.len() as c_uint)
    })
}

/// # Safety
/// `device` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(device) };
    call(
        "nvmlDeviceGetHandleByIndex_v2",
        Target::GpuIndex(index),
        |ctx| {
            let d = DeviceRef::Gpu(index as usize);
            if !ctx.scenario().has(d) {
                return Err(INVALID_ARGUMENT);
            }
            out.set(handle::device(d))
        },
    )
}

/// A GPU uuid gives the GPU's handle, a MIG uuid the MIG device's.
///
/// # Safety
/// `uuid` is null or a NUL-terminated string; `device` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let (uuid, null_uuid) = (unsafe { c_str(uuid) }, uuid.is_null());
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(device) };
    let found = super::lookup(|s| uuid.as_deref().and_then(|u| s.device_by_uuid(u))).flatten();
    call("nvmlDeviceGetHandleByUUID", Target::Found(found), |_ctx| {
        if null_uuid || out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        out.set(handle::device(found.ok_or(NOT_FOUND)?))
    })
}
