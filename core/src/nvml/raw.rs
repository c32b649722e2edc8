//! The raw NVML calls nvml-wrapper does not wrap (or wraps unsafely for our use): MIG
//! GPU/compute-instance ids, and an MPS client listing that leaves spare room and retries
//! when a client starts between the count and the fetch. The only `unsafe` in Headroom's
//! non-fake code lives here.
#![allow(unsafe_code)]

use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlProcessInfo_t, nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE, nvmlReturn_enum_NVML_SUCCESS,
};
use std::os::raw::c_uint;

/// How many times a listing is retried when it keeps growing under us.
const LIST_ATTEMPTS: usize = 4;
/// Spare entries allocated beyond the count NVML reported.
const SPARE: c_uint = 8;

/// GPU-instance id of a MIG device handle (`nvmlDeviceGetGpuInstanceId`).
pub fn gpu_instance_id(nvml: &Nvml, device: &Device<'_>) -> Result<u32, NvmlError> {
    let sym = nvml_sym(nvml.lib().nvmlDeviceGetGpuInstanceId.as_ref())?;
    let mut id: c_uint = 0;
    // SAFETY: the handle comes from a live `Device` of this `Nvml`; `id` is a valid out pointer.
    nvml_try(unsafe { sym(device.handle(), &mut id) })?;
    Ok(id)
}

/// Compute-instance id of a MIG device handle (`nvmlDeviceGetComputeInstanceId`).
pub fn compute_instance_id(nvml: &Nvml, device: &Device<'_>) -> Result<u32, NvmlError> {
    let sym = nvml_sym(nvml.lib().nvmlDeviceGetComputeInstanceId.as_ref())?;
    let mut id: c_uint = 0;
    // SAFETY: as above.
    nvml_try(unsafe { sym(device.handle(), &mut id) })?;
    Ok(id)
}

/// MPS clients of a device (`nvmlDeviceGetMPSComputeRunningProcesses_v3`), robust to clients
/// starting between the count query and the fetch: allocates spare room and retries on
/// `INSUFFICIENT_SIZE`.
pub fn mps_processes(nvml: &Nvml, device: &Device<'_>) -> Result<Vec<ProcessInfo>, NvmlError> {
    let sym = nvml_sym(
        nvml.lib()
            .nvmlDeviceGetMPSComputeRunningProcesses_v3
            .as_ref(),
    )?;
    // SAFETY: the handle comes from a live `Device` of this `Nvml`.
    let handle = unsafe { device.handle() };
    for _ in 0..LIST_ATTEMPTS {
        let mut count: c_uint = 0;
        // SAFETY: a null buffer with count 0 is NVML's documented way to ask for the count.
        let code = unsafe { sym(handle, &mut count, std::ptr::null_mut()) };
        if code == nvmlReturn_enum_NVML_SUCCESS {
            return Ok(Vec::new());
        }
        if code != nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
            nvml_try(code)?;
        }
        let mut capacity = count.saturating_add(SPARE);
        // SAFETY: nvmlProcessInfo_t is a plain C struct of integers; all-zero is valid.
        let mut buf: Vec<nvmlProcessInfo_t> =
            vec![unsafe { std::mem::zeroed() }; capacity as usize];
        // SAFETY: `buf` holds `capacity` initialised elements and NVML writes at most that many.
        let code = unsafe { sym(handle, &mut capacity, buf.as_mut_ptr()) };
        if code == nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
            continue;
        }
        nvml_try(code)?;
        buf.truncate(capacity as usize);
        return Ok(buf.into_iter().map(ProcessInfo::from).collect());
    }
    Err(NvmlError::InsufficientSize(None))
}
