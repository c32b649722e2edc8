//! GPM (GPU performance monitoring, Hopper and newer): samples record a device and a virtual
//! time; a metric between two samples is the mean of the scenario's activity over that
//! interval (the value at the second sample if both were taken at the same virtual time),
//! in percent as NVML reports it. Graphics, SM and any-tensor utilization are supported;
//! other metric ids answer `NOT_SUPPORTED` per metric. Whole-GPU samples come from
//! `nvmlGpmSampleGet` on a GPU handle, per-instance samples from `nvmlGpmMigSampleGet` on
//! the parent GPU with a GPU instance id.

use crate::call::{Ctx, Target, call};
use crate::codes::{
    ARGUMENT_VERSION_MISMATCH, INVALID_ARGUMENT, NOT_FOUND, NOT_SUPPORTED, Ret, SUCCESS,
};
use crate::handle;
use crate::out::{InOut, Out};
use crate::runtime::{Sample, lock};
use headroom_fake::DeviceRef;
use headroom_fake::scenario::{ActivityKind, Gpu};
use nvml_wrapper_sys::bindings as b;
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlGpmSample_t, nvmlReturn_t};
use std::ffi::{CStr, c_char};

fn parent_gpu(ctx: &Ctx) -> Result<&Gpu, Ret> {
    ctx.scenario()
        .gpu(ctx.device()?.gpu())
        .ok_or(INVALID_ARGUMENT)
}

/// # Safety
/// `gpm_support` is null or points to an `nvmlGpmSupport_t` whose `version` is set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: nvmlDevice_t,
    gpm_support: *mut b::nvmlGpmSupport_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut support = unsafe { InOut::new(gpm_support) };
    call("nvmlGpmQueryDeviceSupport", Target::Device(device), |ctx| {
        let mut s = support.get()?;
        if s.version != b::NVML_GPM_SUPPORT_VERSION {
            return Err(ARGUMENT_VERSION_MISMATCH);
        }
        s.isSupportedDevice = parent_gpu(ctx)?.architecture.has_gpm().into();
        support.set(s)
    })
}

/// # Safety
/// `gpm_sample` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(gpm_sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut out = unsafe { Out::new(gpm_sample) };
    call("nvmlGpmSampleAlloc", Target::None, |ctx| {
        if out.is_null() {
            return Err(INVALID_ARGUMENT);
        }
        let id = lock(&ctx.inst.samples).insert(Sample { taken: None });
        out.set(handle::sample(id))
    })
}

/// # Safety
/// None beyond NVML's contract (the sample is an opaque handle).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleFree(gpm_sample: nvmlGpmSample_t) -> nvmlReturn_t {
    call("nvmlGpmSampleFree", Target::None, |ctx| {
        let id = handle::sample_id(gpm_sample).ok_or(INVALID_ARGUMENT)?;
        lock(&ctx.inst.samples)
            .remove(id)
            .map(|_| ())
            .ok_or(INVALID_ARGUMENT)
    })
}

fn record(ctx: &Ctx, sample: nvmlGpmSample_t, device: DeviceRef) -> Result<(), Ret> {
    let id = handle::sample_id(sample).ok_or(INVALID_ARGUMENT)?;
    let mut samples = lock(&ctx.inst.samples);
    let slot = samples.get_mut(id).ok_or(INVALID_ARGUMENT)?;
    slot.taken = Some((device, ctx.now));
    Ok(())
}

/// A whole-GPU sample; `NOT_SUPPORTED` before Hopper and on MIG device handles (use
/// `nvmlGpmMigSampleGet` on the parent).
///
/// # Safety
/// None beyond NVML's contract (opaque handles).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleGet(
    device: nvmlDevice_t,
    gpm_sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    call("nvmlGpmSampleGet", Target::Device(device), |ctx| {
        let d = ctx.device()?;
        if !parent_gpu(ctx)?.architecture.has_gpm() || matches!(d, DeviceRef::Mig { .. }) {
            return Err(NOT_SUPPORTED);
        }
        record(ctx, gpm_sample, d)
    })
}

/// A sample of GPU instance `gpu_instance_id` of a GPU in MIG mode.
///
/// # Safety
/// None beyond NVML's contract (opaque handles).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMigSampleGet(
    device: nvmlDevice_t,
    gpu_instance_id: std::ffi::c_uint,
    gpm_sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    call("nvmlGpmMigSampleGet", Target::Device(device), |ctx| {
        let DeviceRef::Gpu(g) = ctx.device()? else {
            return Err(INVALID_ARGUMENT);
        };
        let gpu = parent_gpu(ctx)?;
        if !gpu.architecture.has_gpm() || !gpu.mig_mode {
            return Err(NOT_SUPPORTED);
        }
        let m = gpu
            .migs
            .iter()
            .find(|m| m.gpu_instance_id == gpu_instance_id)
            .ok_or(NOT_FOUND)?;
        record(
            ctx,
            gpm_sample,
            DeviceRef::Mig {
                gpu: g,
                slot: m.slot,
            },
        )
    })
}

struct MetricInfo {
    kind: ActivityKind,
    short: &'static CStr,
    long: &'static CStr,
}

fn metric(id: u32) -> Option<MetricInfo> {
    let (kind, short, long) = match id {
        b::nvmlGpmMetricId_t_NVML_GPM_METRIC_GRAPHICS_UTIL => (
            ActivityKind::Graphics,
            c"gr_util",
            c"Percentage of time any compute/graphics app was active on the GPU",
        ),
        b::nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_UTIL => (
            ActivityKind::Sm,
            c"sm_util",
            c"Percentage of SMs that were busy",
        ),
        b::nvmlGpmMetricId_t_NVML_GPM_METRIC_ANY_TENSOR_UTIL => (
            ActivityKind::Tensor,
            c"any_tensor_util",
            c"Percentage of time the GPU's SMs were doing ANY tensor operations",
        ),
        _ => return None,
    };
    Some(MetricInfo { kind, short, long })
}

fn as_mut_ptr(s: &'static CStr) -> *mut c_char {
    s.as_ptr().cast_mut()
}

/// Metrics between two samples of the same device.
///
/// # Safety
/// `metrics_get` is null or points to an initialised `nvmlGpmMetricsGet_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMetricsGet(
    metrics_get: *mut b::nvmlGpmMetricsGet_t,
) -> nvmlReturn_t {
    // SAFETY: the caller's contract above.
    let mut request = unsafe { InOut::new(metrics_get) };
    call("nvmlGpmMetricsGet", Target::None, |ctx| {
        let mut r = request.get()?;
        if r.version != b::NVML_GPM_METRICS_GET_VERSION {
            return Err(ARGUMENT_VERSION_MISMATCH);
        }
        let n = r.numMetrics as usize;
        if n > r.metrics.len() {
            return Err(INVALID_ARGUMENT);
        }
        let taken = |h: nvmlGpmSample_t| {
            let id = handle::sample_id(h)?;
            lock(&ctx.inst.samples).get(id)?.taken
        };
        let (Some((d1, t1)), Some((d2, t2))) = (taken(r.sample1), taken(r.sample2)) else {
            return Err(INVALID_ARGUMENT);
        };
        if d1 != d2 {
            return Err(INVALID_ARGUMENT);
        }
        for m in r.metrics.iter_mut().take(n) {
            match metric(m.metricId) {
                Some(info) => {
                    let ratio = ctx
                        .scenario()
                        .activity_mean(d1, info.kind, t1.min(t2), t1.max(t2));
                    m.value = 100.0 * ratio;
                    m.nvmlReturn = SUCCESS;
                    m.metricInfo.shortName = as_mut_ptr(info.short);
                    m.metricInfo.longName = as_mut_ptr(info.long);
                    m.metricInfo.unit = as_mut_ptr(c"%");
                }
                None => {
                    m.value = 0.0;
                    m.nvmlReturn = NOT_SUPPORTED;
                }
            }
        }
        request.set(r)
    })
}
