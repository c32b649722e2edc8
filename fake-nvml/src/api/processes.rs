//! Running processes. On a GPU handle every process of the GPU (MIG instances included, with
//! their GPU/compute instance ids), on a MIG handle only that instance's; outside MIG the ids
//! are `0xFFFFFFFF`. The MPS list holds the MPS clients (static `mps = true` processes and
//! live jobs on MPS devices); the compute list holds the others. Counting follows NVML: a
//! null buffer (or one too small) gets `INSUFFICIENT_SIZE` and the count, or `SUCCESS` and 0
//! when there is nothing to list. An injected `INSUFFICIENT_SIZE` fault makes a fetch need
//! one entry more than the count said, as when a process starts between count and fetch: a
//! caller that retries with the count it got back (or with spare room) succeeds.

use crate::call::{ListFault, Target, call};
use crate::codes::{INSUFFICIENT_SIZE, Ret};
use crate::out::{InOut, OutArray};
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlProcessInfo_t, nvmlReturn_t};
use std::ffi::c_uint;

const NOT_MIG: u32 = 0xFFFF_FFFF;

/// # Safety
/// `count` is null or an initialised, writable count; `infos` is null or writable for
/// `*count` entries.
unsafe fn list(
    name: &'static str,
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    mps: bool,
) -> Ret {
    // SAFETY: the caller's contract above.
    let mut count = unsafe { InOut::new(count) };
    let cap = count.get().unwrap_or(0) as usize;
    // SAFETY: the caller's contract above: `infos` has room for `*count` entries.
    let mut infos = unsafe { OutArray::new(infos, cap) };
    call(name, Target::Device(device), |ctx| {
        count.get()?;
        let device = ctx.device()?;
        let s = ctx.scenario();
        let entries: Vec<nvmlProcessInfo_t> = ctx
            .processes()
            .iter()
            .filter(|p| p.on(device) && p.mps == mps)
            .map(|p| {
                let (gi, ci) = match p.mig.and_then(|slot| s.mig(p.gpu, slot)) {
                    Some(m) => (m.gpu_instance_id, m.compute_instance_id),
                    None => (NOT_MIG, NOT_MIG),
                };
                nvmlProcessInfo_t {
                    pid: p.pid,
                    usedGpuMemory: p.used,
                    gpuInstanceId: gi,
                    computeInstanceId: ci,
                }
            })
            .collect();
        if ctx.grow_list == ListFault::Always {
            // However large the buffer, the list has outgrown it by one.
            let asked = if infos.is_null() { 0 } else { infos.capacity() };
            count.set(asked.max(entries.len()).saturating_add(1) as c_uint)?;
            return Err(INSUFFICIENT_SIZE);
        }
        if infos.is_null() {
            count.set(entries.len() as c_uint)?;
            return if entries.is_empty() {
                Ok(())
            } else {
                Err(INSUFFICIENT_SIZE)
            };
        }
        // An injected INSUFFICIENT_SIZE: a process started between the count and this fetch
        // (and is gone again), so a buffer of exactly the counted size is one short.
        let needed = entries.len() + usize::from(ctx.grow_list == ListFault::GrowByOne);
        if infos.capacity() < needed {
            count.set(needed as c_uint)?;
            return Err(INSUFFICIENT_SIZE);
        }
        infos.fill(&entries)?;
        count.set(entries.len() as c_uint)
    })
}

/// # Safety
/// `info_count` is null or an initialised, writable count; `infos` is null or writable for
/// `*info_count` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller's contract.
    unsafe {
        list(
            "nvmlDeviceGetComputeRunningProcesses_v3",
            device,
            info_count,
            infos,
            false,
        )
    }
}

/// # Safety
/// `info_count` is null or an initialised, writable count; `infos` is null or writable for
/// `*info_count` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMPSComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    info_count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller's contract.
    unsafe {
        list(
            "nvmlDeviceGetMPSComputeRunningProcesses_v3",
            device,
            info_count,
            infos,
            true,
        )
    }
}
