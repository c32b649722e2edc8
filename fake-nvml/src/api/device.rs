//! Per-device identity and sensors: index, name, uuid, architecture, MIG mode, temperature,
//! power, clocks, utilization. Sensors and utilization are whole-GPU values: on a MIG device
//! handle they are `NOT_SUPPORTED`, and utilization is also `NOT_SUPPORTED` on a GPU in MIG
//! mode, as on real hardware.

use crate::call::{Ctx, Target, call};
use crate::codes::{INVALID_ARGUMENT, NOT_SUPPORTED, Ret};
use crate::out::{Out, OutArray};
use headroom_fake::DeviceRef;
use headroom_fake::scenario::{ActivityKind, Gpu};
use nvml_wrapper_sys::bindings as b;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlReturn_t};
use std::ffi::{c_char, c_uint};

/// The GPU of a whole-GPU handle; `NOT_SUPPORTED` for a MIG device handle.
fn whole_gpu(ctx: &Ctx) -> Result<&Gpu, Ret> {
    match ctx.device()? {
        DeviceRef::Gpu(g) => ctx.scenario().gpu(g).ok_or(INVALID_ARGUMENT),
        DeviceRef::Mig { .. } => Err(NOT_SUPPORTED),
    }
}

/// The GPU a handle belongs to (its parent for a MIG device).
fn parent_gpu(ctx: &Ctx) -> Result<&Gpu, Ret> {
    ctx.scenario()
        .gpu(ctx.device()?.gpu())
        .ok_or(INVALID_ARGUMENT)
}

fn round_u32(v: f64) -> c_uint {
    v.max(0.0).round() as c_uint
}

/// # Safety
/// `index` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(index) };
    call("nvmlDeviceGetIndex", Target::Device(device), |ctx| {
        out.set(whole_gpu(ctx)?.index as c_uint)
    })
}

/// A GPU's product name; for a MIG device `<GPU name> MIG <profile>`.
///
/// # Safety
/// `name` is null or writable for `length` chars.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut buf = unsafe { OutArray::new(name, length as usize) };
    call("nvmlDeviceGetName", Target::Device(device), |ctx| {
        let s = ctx.scenario();
        let text = match ctx.device()? {
            DeviceRef::Gpu(g) => s.gpu(g).map(|g| g.name.clone()),
            DeviceRef::Mig { gpu, slot } => s
                .gpu(gpu)
                .zip(s.mig(gpu, slot))
                .map(|(g, m)| format!("{} MIG {}", g.name, m.profile.name)),
        };
        buf.put_str(&text.ok_or(INVALID_ARGUMENT)?)
    })
}

/// The GPU uuid, or the MIG uuid for a MIG device.
///
/// # Safety
/// `uuid` is null or writable for `length` chars.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut buf = unsafe { OutArray::new(uuid, length as usize) };
    call("nvmlDeviceGetUUID", Target::Device(device), |ctx| {
        let uuid = ctx
            .scenario()
            .device_uuid(ctx.device()?)
            .ok_or(INVALID_ARGUMENT)?;
        buf.put_str(uuid)
    })
}

/// `NVML_DEVICE_ARCH_*` of the GPU (a MIG device answers for its parent).
///
/// # Safety
/// `arch` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetArchitecture(
    device: nvmlDevice_t,
    arch: *mut b::nvmlDeviceArchitecture_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(arch) };
    call("nvmlDeviceGetArchitecture", Target::Device(device), |ctx| {
        out.set(parent_gpu(ctx)?.architecture.nvml_code())
    })
}

/// Current and pending MIG mode; `NOT_SUPPORTED` on GPUs without a MIG table and on MIG
/// device handles.
///
/// # Safety
/// `current_mode` and `pending_mode` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current_mode: *mut c_uint,
    pending_mode: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let (mut current, mut pending) = unsafe { (Out::new(current_mode), Out::new(pending_mode)) };
    call("nvmlDeviceGetMigMode", Target::Device(device), |ctx| {
        if current.is_null() || pending.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let g = whole_gpu(ctx)?;
        if g.mig_table.is_none() {
            return Err(NOT_SUPPORTED);
        }
        let mode = if g.mig_mode {
            b::NVML_DEVICE_MIG_ENABLE
        } else {
            b::NVML_DEVICE_MIG_DISABLE
        };
        current.set(mode)?;
        pending.set(mode)
    })
}

/// GPU core temperature, °C (`NVML_TEMPERATURE_GPU` only).
///
/// # Safety
/// `temp` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor_type: b::nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(temp) };
    call("nvmlDeviceGetTemperature", Target::Device(device), |ctx| {
        if sensor_type != b::nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU || out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let g = whole_gpu(ctx)?;
        out.set(round_u32(g.telemetry.temperature_c.at(ctx.now)))
    })
}

/// Board power draw, milliwatts.
///
/// # Safety
/// `power` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: nvmlDevice_t,
    power: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(power) };
    call("nvmlDeviceGetPowerUsage", Target::Device(device), |ctx| {
        if out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let g = whole_gpu(ctx)?;
        out.set(round_u32(g.telemetry.power_w.at(ctx.now) * 1000.0))
    })
}

/// Current clock, MHz: graphics and SM give `sm_clock_mhz`, memory `mem_clock_mhz`; the
/// video clock is `NOT_SUPPORTED`.
///
/// # Safety
/// `clock` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    type_: b::nvmlClockType_t,
    clock: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(clock) };
    call("nvmlDeviceGetClockInfo", Target::Device(device), |ctx| {
        if out.is_null() || type_ >= b::nvmlClockType_enum_NVML_CLOCK_COUNT {
            return Err(INVALID_ARGUMENT);
        }
        let g = whole_gpu(ctx)?;
        let series = match type_ {
            b::nvmlClockType_enum_NVML_CLOCK_GRAPHICS | b::nvmlClockType_enum_NVML_CLOCK_SM => {
                &g.telemetry.sm_clock_mhz
            }
            b::nvmlClockType_enum_NVML_CLOCK_MEM => &g.telemetry.mem_clock_mhz,
            _ => return Err(NOT_SUPPORTED),
        };
        out.set(round_u32(series.at(ctx.now)))
    })
}

/// GPU and memory utilization, percent. `NOT_SUPPORTED` on MIG device handles and on GPUs
/// in MIG mode.
///
/// # Safety
/// `utilization` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut b::nvmlUtilization_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(utilization) };
    call(
        "nvmlDeviceGetUtilizationRates",
        Target::Device(device),
        |ctx| {
            if out.is_null() {
                return Err(INVALID_ARGUMENT);
            }
            let g = whole_gpu(ctx)?;
            if g.mig_mode {
                return Err(NOT_SUPPORTED);
            }
            let gpu = match &g.telemetry.utilization_percent {
                Some(s) => s.at(ctx.now),
                None => {
                    100.0
                        * ctx.scenario().activity_mean(
                            DeviceRef::Gpu(g.index),
                            ActivityKind::Graphics,
                            ctx.now,
                            ctx.now,
                        )
                }
            };
            out.set(b::nvmlUtilization_t {
                gpu: round_u32(gpu),
                memory: round_u32(g.telemetry.memory_utilization_percent.at(ctx.now)),
            })
        },
    )
}
