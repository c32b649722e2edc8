//! MIG: MIG device handles and their ids, and the GPU's built-in MIG profile table and
//! possible placements. Both answer with MIG mode off, as NVML documents ("returns all the
//! possible placements for the given profile regardless of whether MIG is enabled or not").

use crate::call::{Ctx, Target, call};
use crate::codes::{
    ARGUMENT_VERSION_MISMATCH, INSUFFICIENT_SIZE, INVALID_ARGUMENT, NOT_FOUND, NOT_SUPPORTED, Ret,
};
use crate::handle;
use crate::out::{InOut, Out, OutArray};
use headroom_fake::DeviceRef;
use headroom_fake::mig_profiles::{MigProfile, MigTable};
use headroom_fake::scenario::Gpu;
use nvml_wrapper_sys::bindings as b;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlReturn_t};
use std::ffi::{c_char, c_uint};

/// The GPU of a whole-GPU handle; `INVALID_ARGUMENT` for a MIG device handle.
fn parent_only(ctx: &Ctx) -> Result<&Gpu, Ret> {
    match ctx.device()? {
        DeviceRef::Gpu(g) => ctx.scenario().gpu(g).ok_or(INVALID_ARGUMENT),
        DeviceRef::Mig { .. } => Err(INVALID_ARGUMENT),
    }
}

fn table(g: &Gpu) -> Result<&'static MigTable, Ret> {
    g.mig_table.ok_or(NOT_SUPPORTED)
}

/// Maximum MIG devices under a GPU: the table's largest instance count when MIG mode is on,
/// 0 otherwise.
///
/// # Safety
/// `count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(count) };
    call(
        "nvmlDeviceGetMaxMigDeviceCount",
        Target::Device(device),
        |ctx| {
            let g = parent_only(ctx)?;
            out.set(max_mig_devices(g))
        },
    )
}

/// MIG device slots of a GPU: its profile table's instance maximum in MIG mode, else 0.
fn max_mig_devices(g: &headroom_fake::scenario::Gpu) -> c_uint {
    match g.mig_table {
        Some(t) if g.mig_mode => t.max_instances(),
        _ => 0,
    }
}

/// The MIG device in slot `index`: `NOT_FOUND` for an empty slot, `INVALID_ARGUMENT` past the
/// maximum.
///
/// # Safety
/// `mig_device` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(mig_device) };
    call(
        "nvmlDeviceGetMigDeviceHandleByIndex",
        Target::Device(device),
        |ctx| {
            let g = parent_only(ctx)?;
            let max = max_mig_devices(g);
            if index >= max || out.is_null() {
                return Err(INVALID_ARGUMENT);
            }
            let slot = index as usize;
            if g.migs.get(slot).is_none() {
                return Err(NOT_FOUND);
            }
            out.set(handle::device(DeviceRef::Mig { gpu: g.index, slot }))
        },
    )
}

/// # Safety
/// `is_mig_device` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(
    device: nvmlDevice_t,
    is_mig_device: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(is_mig_device) };
    call(
        "nvmlDeviceIsMigDeviceHandle",
        Target::Device(device),
        |ctx| out.set(matches!(ctx.device()?, DeviceRef::Mig { .. }).into()),
    )
}

/// # Safety
/// `parent` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig_device: nvmlDevice_t,
    parent: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(parent) };
    call(
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
        Target::Device(mig_device),
        |ctx| match ctx.device()? {
            DeviceRef::Mig { gpu, .. } => out.set(handle::device(DeviceRef::Gpu(gpu))),
            DeviceRef::Gpu(_) => Err(INVALID_ARGUMENT),
        },
    )
}

fn mig_ids(ctx: &Ctx) -> Result<(u32, u32), Ret> {
    match ctx.device()? {
        DeviceRef::Mig { gpu, slot } => ctx
            .scenario()
            .mig(gpu, slot)
            .map(|m| (m.gpu_instance_id, m.compute_instance_id))
            .ok_or(INVALID_ARGUMENT),
        DeviceRef::Gpu(_) => Err(NOT_SUPPORTED),
    }
}

/// # Safety
/// `id` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(id) };
    call(
        "nvmlDeviceGetGpuInstanceId",
        Target::Device(device),
        |ctx| out.set(mig_ids(ctx)?.0),
    )
}

/// # Safety
/// `id` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(id) };
    call(
        "nvmlDeviceGetComputeInstanceId",
        Target::Device(device),
        |ctx| out.set(mig_ids(ctx)?.1),
    )
}

/// The profile with NVML profile index `profile` (`NVML_GPU_INSTANCE_PROFILE_*`).
fn profile_by_index(ctx: &Ctx, profile: c_uint) -> Result<&'static MigProfile, Ret> {
    let g = parent_only(ctx)?;
    let t = table(g)?;
    if profile >= b::NVML_GPU_INSTANCE_PROFILE_COUNT {
        return Err(INVALID_ARGUMENT);
    }
    t.by_index(profile).ok_or(NOT_SUPPORTED)
}

fn name_field(p: &MigProfile) -> [c_char; 96] {
    let mut name = [0 as c_char; 96];
    for (dst, src) in name
        .iter_mut()
        .zip(format!("MIG {}", p.name).bytes().take(95))
    {
        *dst = src as c_char;
    }
    name
}

/// Profile info by profile index; works with MIG mode off.
///
/// # Safety
/// `info` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut b::nvmlGpuInstanceProfileInfo_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(info) };
    call(
        "nvmlDeviceGetGpuInstanceProfileInfo",
        Target::Device(device),
        |ctx| {
            if out.is_null() {
                return Err(INVALID_ARGUMENT);
            }
            let p = profile_by_index(ctx, profile)?;
            out.set(b::nvmlGpuInstanceProfileInfo_t {
                id: p.id,
                isP2pSupported: 0,
                sliceCount: p.slices,
                instanceCount: p.instance_count,
                multiprocessorCount: p.sm_count,
                copyEngineCount: p.copy_engines,
                decoderCount: p.decoders,
                encoderCount: p.encoders,
                jpegCount: p.jpeg,
                ofaCount: p.ofa,
                memorySizeMB: p.memory_mib,
            })
        },
    )
}

const INFO_V2: u32 = (std::mem::size_of::<b::nvmlGpuInstanceProfileInfo_v2_t>() as u32) | (2 << 24);
const INFO_V3: u32 = (std::mem::size_of::<b::nvmlGpuInstanceProfileInfo_v3_t>() as u32) | (3 << 24);

/// Versioned profile info (v2, or v3 when the caller's `version` says so), with the name.
///
/// # Safety
/// `info` is null or points to a writable v2 struct (v3 if `version` is v3's) whose
/// `version` is set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfoV(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut b::nvmlGpuInstanceProfileInfo_v2_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above: `version` (the first field) is set.
    let version = unsafe { InOut::new(info.cast::<u32>()) }.get();
    // SAFETY: the caller's contract above (the v3 view is used only when `version` says v3).
    let (mut v2, mut v3) = unsafe {
        (
            Out::new(info),
            Out::new(info.cast::<b::nvmlGpuInstanceProfileInfo_v3_t>()),
        )
    };
    call(
        "nvmlDeviceGetGpuInstanceProfileInfoV",
        Target::Device(device),
        |ctx| {
            let version = version?;
            if version != INFO_V2 && version != INFO_V3 {
                return Err(ARGUMENT_VERSION_MISMATCH);
            }
            let p = profile_by_index(ctx, profile)?;
            if version == INFO_V3 {
                return v3.set(b::nvmlGpuInstanceProfileInfo_v3_t {
                    version,
                    id: p.id,
                    sliceCount: p.slices,
                    instanceCount: p.instance_count,
                    multiprocessorCount: p.sm_count,
                    copyEngineCount: p.copy_engines,
                    decoderCount: p.decoders,
                    encoderCount: p.encoders,
                    jpegCount: p.jpeg,
                    ofaCount: p.ofa,
                    memorySizeMB: p.memory_mib,
                    name: name_field(p),
                    capabilities: 0,
                });
            }
            v2.set(b::nvmlGpuInstanceProfileInfo_v2_t {
                version,
                id: p.id,
                isP2pSupported: 0,
                sliceCount: p.slices,
                instanceCount: p.instance_count,
                multiprocessorCount: p.sm_count,
                copyEngineCount: p.copy_engines,
                decoderCount: p.decoders,
                encoderCount: p.encoders,
                jpegCount: p.jpeg,
                ofaCount: p.ofa,
                memorySizeMB: p.memory_mib,
                name: name_field(p),
            })
        },
    )
}

/// Every placement profile `profile_id` may take (start and size in memory slices), with MIG
/// mode on or off. A null buffer gets the count; `NOT_SUPPORTED` for a GPU without a MIG
/// table or an unknown profile ID.
///
/// # Safety
/// `count` is null or an initialised, writable count; `placements` is null or writable for
/// `*count` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstancePossiblePlacements_v2(
    device: nvmlDevice_t,
    profile_id: c_uint,
    placements: *mut b::nvmlGpuInstancePlacement_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut count = unsafe { InOut::new(count) };
    let cap = count.get().unwrap_or(0) as usize;
    // SAFETY: the caller's contract above.
    let mut out = unsafe { OutArray::new(placements, cap) };
    call(
        "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
        Target::Device(device),
        |ctx| {
            count.get()?;
            let g = parent_only(ctx)?;
            let t = table(g)?;
            let p = t.by_id(profile_id).ok_or(NOT_SUPPORTED)?;
            let all: Vec<b::nvmlGpuInstancePlacement_t> = p
                .placement_starts
                .iter()
                .map(|&start| b::nvmlGpuInstancePlacement_t {
                    start,
                    size: p.placement_size,
                })
                .collect();
            if out.is_null() {
                return count.set(all.len() as c_uint);
            }
            if out.capacity() < all.len() {
                count.set(all.len() as c_uint)?;
                return Err(INSUFFICIENT_SIZE);
            }
            out.fill(&all)?;
            count.set(all.len() as c_uint)
        },
    )
}
