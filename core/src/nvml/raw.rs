//! The raw NVML calls nvml-wrapper does not wrap (or wraps unsafely for our use): MIG
//! GPU/compute-instance ids, the GPU-instance profile table and its possible placements
//! (nvml-wrapper's `possible_placements` returns an empty list), and an MPS client listing
//! that leaves spare room and retries when a client starts between the count and the fetch. The only `unsafe` in Headroom's
//! non-fake code lives here.
#![allow(unsafe_code)]

use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{
    nvmlGpuInstancePlacement_t, nvmlGpuInstanceProfileInfo_t, nvmlGpuInstanceProfileInfo_v2_t,
    nvmlProcessInfo_t, nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE, nvmlReturn_enum_NVML_SUCCESS,
};
use std::os::raw::{c_char, c_uint};

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

/// Profile indexes `gpu_instance_profile` may be asked for (`NVML_GPU_INSTANCE_PROFILE_COUNT`
/// of the bindings; a newer driver may know more, an older one answers `InvalidArg`).
pub const GPU_INSTANCE_PROFILE_COUNT: u32 =
    nvml_wrapper_sys::bindings::NVML_GPU_INSTANCE_PROFILE_COUNT;

/// One row of a GPU's MIG GPU-instance profile table, as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInstanceProfile {
    /// The profile index asked for (`NVML_GPU_INSTANCE_PROFILE_*`).
    pub index: u32,
    /// Profile ID (what `nvidia-smi mig -lgip` shows and `-cgi` takes).
    pub id: u32,
    /// `MIG 3g.40gb` (from the versioned call; `None` when the driver lacks it).
    pub name: Option<String>,
    pub slice_count: u32,
    pub instance_count: u32,
    pub sm_count: u32,
    pub copy_engines: u32,
    pub decoders: u32,
    pub encoders: u32,
    pub jpeg: u32,
    pub ofa: u32,
    pub memory_mib: u64,
}

/// `NVML_ERROR_ARGUMENT_VERSION_MISMATCH`, which nvml-wrapper does not name.
const ARGUMENT_VERSION_MISMATCH: u32 =
    nvml_wrapper_sys::bindings::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;

/// `nvmlGpuInstanceProfileInfo_v2_t`'s version word: its size and version 2 in the top byte.
const PROFILE_INFO_V2: c_uint =
    (std::mem::size_of::<nvmlGpuInstanceProfileInfo_v2_t>() as c_uint) | (2 << 24);

/// GPU-instance profile `index` of a GPU (`nvmlDeviceGetGpuInstanceProfileInfoV`, falling back
/// to the unversioned call without a name). Works with MIG mode off. `NotSupported` when the
/// GPU has no such profile, `InvalidArg` past the driver's last index.
pub fn gpu_instance_profile(
    nvml: &Nvml,
    device: &Device<'_>,
    index: u32,
) -> Result<GpuInstanceProfile, NvmlError> {
    // SAFETY: the handle comes from a live `Device` of this `Nvml`.
    let handle = unsafe { device.handle() };
    if let Ok(sym) = nvml_sym(nvml.lib().nvmlDeviceGetGpuInstanceProfileInfoV.as_ref()) {
        // SAFETY: a plain C struct of integers and a char array; all-zero is valid.
        let mut info: nvmlGpuInstanceProfileInfo_v2_t = unsafe { std::mem::zeroed() };
        info.version = PROFILE_INFO_V2;
        // SAFETY: `info` is a writable v2 struct whose `version` says v2.
        match nvml_try(unsafe { sym(handle, index, &mut info) }) {
            Ok(()) => {
                return Ok(GpuInstanceProfile {
                    index,
                    id: info.id,
                    name: c_name(&info.name),
                    slice_count: info.sliceCount,
                    instance_count: info.instanceCount,
                    sm_count: info.multiprocessorCount,
                    copy_engines: info.copyEngineCount,
                    decoders: info.decoderCount,
                    encoders: info.encoderCount,
                    jpeg: info.jpegCount,
                    ofa: info.ofaCount,
                    memory_mib: info.memorySizeMB,
                });
            }
            // Older drivers (no such call, or another struct version): the unversioned call.
            Err(
                NvmlError::FunctionNotFound
                | NvmlError::Unknown
                | NvmlError::UnexpectedVariant(ARGUMENT_VERSION_MISMATCH),
            ) => {}
            Err(e) => return Err(e),
        }
    }
    let sym = nvml_sym(nvml.lib().nvmlDeviceGetGpuInstanceProfileInfo.as_ref())?;
    // SAFETY: a plain C struct of integers; all-zero is valid.
    let mut info: nvmlGpuInstanceProfileInfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out pointer.
    nvml_try(unsafe { sym(handle, index, &mut info) })?;
    Ok(GpuInstanceProfile {
        index,
        id: info.id,
        name: None,
        slice_count: info.sliceCount,
        instance_count: info.instanceCount,
        sm_count: info.multiprocessorCount,
        copy_engines: info.copyEngineCount,
        decoders: info.decoderCount,
        encoders: info.encoderCount,
        jpeg: info.jpegCount,
        ofa: info.ofaCount,
        memory_mib: info.memorySizeMB,
    })
}

/// The NUL-terminated name in a fixed char array (`None` if empty or not UTF-8).
fn c_name(raw: &[c_char]) -> Option<String> {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// Every placement GPU-instance profile `profile_id` may take, as `(start, size)` in memory
/// slices (`nvmlDeviceGetGpuInstancePossiblePlacements_v2`). NVML documents that it answers
/// regardless of MIG mode; it needs a privileged user (`NoPermission` otherwise).
pub fn gpu_instance_placements(
    nvml: &Nvml,
    device: &Device<'_>,
    profile_id: u32,
) -> Result<Vec<(u32, u32)>, NvmlError> {
    let sym = nvml_sym(
        nvml.lib()
            .nvmlDeviceGetGpuInstancePossiblePlacements_v2
            .as_ref(),
    )?;
    // SAFETY: the handle comes from a live `Device` of this `Nvml`.
    let handle = unsafe { device.handle() };
    for _ in 0..LIST_ATTEMPTS {
        let mut count: c_uint = 0;
        // SAFETY: a null buffer asks for the count, written to `count`.
        nvml_try(unsafe { sym(handle, profile_id, std::ptr::null_mut(), &mut count) })?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut capacity = count;
        let mut buf = vec![nvmlGpuInstancePlacement_t { start: 0, size: 0 }; capacity as usize];
        // SAFETY: `buf` holds `capacity` elements and NVML writes at most that many.
        let code = unsafe { sym(handle, profile_id, buf.as_mut_ptr(), &mut capacity) };
        if code == nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE {
            continue;
        }
        nvml_try(code)?;
        buf.truncate(capacity as usize);
        return Ok(buf.into_iter().map(|p| (p.start, p.size)).collect());
    }
    Err(NvmlError::InsufficientSize(None))
}
