//! `libheadroom_fake_dcgm.so`: a fake NVIDIA DCGM driven by a Headroom scenario file
//! (`HEADROOM_FAKE_SCENARIO`, the same file the fake NVML reads; format in
//! `docs/scenarios.md`). Load it in place of `libdcgm.so.4` (`headroom-exporter --backend dcgm
//! --dcgm-lib PATH`) to run the DCGM backend through its real FFI path without DCGM or a GPU.
//!
//! Exports the functions of `dcgm-sys/include/headroom_dcgm.h`. What it answers (see
//! `engine`): GPU entities = the scenario's GPUs; each MIG instance a GPU-instance and a
//! compute-instance entity with id `gpu * 8 + slot`; field values at the current virtual time
//! (or, for an embedded engine in manual mode, at its last `dcgmUpdateAllFields`; `NO_DATA`
//! before one). Values: `DEV_UUID` (GPUs), `DEV_FB_TOTAL/USED/FREE` in MiB (GPUs and GPU
//! instances, the fake NVML's memory model), and the four `PROF_*` activity fields from the
//! scenario's `graphics_active`, `sm_active`, `tensor_active`, `dram_active` (mean over the
//! watch period; not supported on a MIG-enabled GPU entity, as in DCGM). `ts` is virtual
//! microseconds since the scenario's start. `[[fault]]` entries naming a DCGM function apply
//! (their NVML error answered as the nearest DCGM status); on `dcgmEntitiesGetLatestValues`
//! a fault with `gpu` fails only that GPU's values.
//!
//! Unsafe code is confined to this file's pointer reads and writes at the FFI boundary;
//! panics are caught there (`DCGM_ST_GENERIC_ERROR`).
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![allow(non_snake_case)]

pub mod engine;

use dcgm_sys as sys;
use engine::{Status, Val, with};
use std::ffi::{CStr, c_char, c_int, c_uint, c_ushort};

/// Runs `f`, turning its result into a status and a panic into `GENERIC_ERROR`.
fn guard(f: impl FnOnce() -> Result<(), Status>) -> sys::dcgmReturn_t {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => sys::DCGM_ST_OK,
        Ok(Err(s)) => s,
        Err(_) => sys::DCGM_ST_GENERIC_ERROR,
    }
}

/// Writes `v` through `p`, or `BADPARAM` when it is null.
///
/// # Safety
/// `p` is null or valid for writes of `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Result<(), Status> {
    if p.is_null() {
        return Err(sys::DCGM_ST_BADPARAM);
    }
    // SAFETY: non-null, and valid for writes per the contract.
    unsafe { p.write(v) };
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmInit() -> sys::dcgmReturn_t {
    guard(|| {
        engine::init()?;
        // An injected fault on dcgmInit refuses the new reference.
        with("dcgmInit", |_| Ok(())).inspect_err(|_| {
            let _ = engine::shutdown();
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmShutdown() -> sys::dcgmReturn_t {
    guard(engine::shutdown)
}

/// # Safety
/// `handle` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmStartEmbedded(
    mode: sys::dcgmOperationMode_t,
    handle: *mut sys::dcgmHandle_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        let manual = match mode {
            sys::DCGM_OPERATION_MODE_AUTO => false,
            sys::DCGM_OPERATION_MODE_MANUAL => true,
            _ => return Err(sys::DCGM_ST_BADPARAM),
        };
        if handle.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        let h = with("dcgmStartEmbedded", |i| Ok(i.open(manual)))?;
        // SAFETY: the caller's contract above.
        unsafe { put(handle, h) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmStopEmbedded(handle: sys::dcgmHandle_t) -> sys::dcgmReturn_t {
    guard(|| with("dcgmStopEmbedded", |i| i.close(handle)))
}

/// # Safety
/// `address` is null or NUL-terminated; `params` null or a readable versioned struct;
/// `handle` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmConnect_v2(
    address: *const c_char,
    params: *mut sys::dcgmConnectV2Params_v2,
    handle: *mut sys::dcgmHandle_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        if address.is_null() || handle.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        // SAFETY: the caller's contract above.
        if unsafe { CStr::from_ptr(address) }.to_bytes().is_empty() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        // SAFETY: the caller's contract above; only the version is read.
        if !params.is_null() && unsafe { (*params).version } != sys::CONNECT_V2_PARAMS_VERSION2 {
            return Err(sys::DCGM_ST_VER_MISMATCH);
        }
        // A standalone host engine samples on its own: auto mode.
        let h = with("dcgmConnect_v2", |i| Ok(i.open(false)))?;
        // SAFETY: the caller's contract above.
        unsafe { put(handle, h) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmDisconnect(handle: sys::dcgmHandle_t) -> sys::dcgmReturn_t {
    guard(|| with("dcgmDisconnect", |i| i.close(handle)))
}

#[unsafe(no_mangle)]
pub extern "C" fn errorString(result: sys::dcgmReturn_t) -> *const c_char {
    let s: &'static CStr = match result {
        sys::DCGM_ST_OK => c"Success",
        sys::DCGM_ST_BADPARAM => c"Bad parameter passed to function",
        sys::DCGM_ST_GENERIC_ERROR => c"Generic unspecified error",
        sys::DCGM_ST_NOT_SUPPORTED => c"This request is not supported",
        sys::DCGM_ST_INIT_ERROR => c"DCGM initialization error",
        sys::DCGM_ST_UNINITIALIZED => c"Uninitialized",
        sys::DCGM_ST_TIMEOUT => c"Timeout",
        sys::DCGM_ST_VER_MISMATCH => c"API version mismatch",
        sys::DCGM_ST_NO_DATA => c"No data is available",
        sys::DCGM_ST_NOT_WATCHED => c"Field is not being watched",
        sys::DCGM_ST_NO_PERMISSION => c"No permission",
        sys::DCGM_ST_GPU_IS_LOST => c"GPU is lost",
        sys::DCGM_ST_CONNECTION_NOT_VALID => c"The connection to the host engine is not valid",
        sys::DCGM_ST_INSUFFICIENT_SIZE => c"An input argument is not large enough",
        sys::DCGM_ST_INSTANCE_NOT_FOUND => c"Instance not found",
        _ => c"Unknown error",
    };
    s.as_ptr()
}

/// # Safety
/// `ids` is null or has `DCGM_MAX_NUM_DEVICES` writable entries; `count` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmGetAllSupportedDevices(
    handle: sys::dcgmHandle_t,
    ids: *mut c_uint,
    count: *mut c_int,
) -> sys::dcgmReturn_t {
    guard(|| {
        if ids.is_null() || count.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        let list = with("dcgmGetAllSupportedDevices", |i| i.gpu_ids(handle))?;
        let n = list.len().min(sys::DCGM_MAX_NUM_DEVICES as usize);
        for (k, id) in list.iter().take(n).enumerate() {
            // SAFETY: k < DCGM_MAX_NUM_DEVICES entries, per the contract.
            unsafe { ids.add(k).write(*id) };
        }
        // SAFETY: the caller's contract above.
        unsafe { put(count, n as c_int) }
    })
}

fn c_chars<const N: usize>(s: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    for (o, b) in out.iter_mut().zip(s.bytes().take(N - 1)) {
        *o = b as c_char;
    }
    out
}

/// # Safety
/// `hierarchy` is null or a writable `dcgmMigHierarchy_v2` whose `version` is set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmGetGpuInstanceHierarchy(
    handle: sys::dcgmHandle_t,
    hierarchy: *mut sys::dcgmMigHierarchy_v2,
) -> sys::dcgmReturn_t {
    guard(|| {
        if hierarchy.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        // SAFETY: non-null per the check, valid per the contract.
        let h = unsafe { &mut *hierarchy };
        if h.version != sys::MIG_HIERARCHY_VERSION2 {
            return Err(sys::DCGM_ST_VER_MISMATCH);
        }
        let entries = with("dcgmGetGpuInstanceHierarchy", |i| i.hierarchy(handle))?;
        if entries.len() > h.entityList.len() {
            return Err(sys::DCGM_ST_INSUFFICIENT_SIZE);
        }
        for (slot, e) in h.entityList.iter_mut().zip(&entries) {
            slot.entity.entityGroupId = e.entity.0;
            slot.entity.entityId = e.entity.1;
            slot.parent.entityGroupId = e.parent.0;
            slot.parent.entityId = e.parent.1;
            slot.info.gpuUuid = c_chars(&e.gpu_uuid);
            slot.info.nvmlGpuIndex = e.gpu_index;
            slot.info.nvmlInstanceId = e.instance_id;
            slot.info.nvmlComputeInstanceId = e.compute_instance_id;
            slot.info.nvmlMigProfileId = e.profile_id;
            slot.info.nvmlProfileSlices = e.slices;
        }
        h.count = entries.len() as c_uint;
        Ok(())
    })
}

/// # Safety
/// `name` is null or NUL-terminated; `group` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmGroupCreate(
    handle: sys::dcgmHandle_t,
    kind: sys::dcgmGroupType_t,
    name: *const c_char,
    group: *mut sys::dcgmGpuGrp_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        if name.is_null() || group.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        let all = match kind {
            sys::DCGM_GROUP_DEFAULT => true,
            sys::DCGM_GROUP_EMPTY => false,
            _ => return Err(sys::DCGM_ST_NOT_SUPPORTED),
        };
        let id = with("dcgmGroupCreate", |i| i.group_create(handle, all))?;
        // SAFETY: the caller's contract above.
        unsafe { put(group, id) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmGroupAddEntity(
    handle: sys::dcgmHandle_t,
    group: sys::dcgmGpuGrp_t,
    entity_group: sys::dcgm_field_entity_group_t,
    entity_id: sys::dcgm_field_eid_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        with("dcgmGroupAddEntity", |i| {
            i.group_add(handle, group, (entity_group, entity_id))
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmGroupDestroy(
    handle: sys::dcgmHandle_t,
    group: sys::dcgmGpuGrp_t,
) -> sys::dcgmReturn_t {
    guard(|| with("dcgmGroupDestroy", |i| i.group_destroy(handle, group)))
}

/// # Safety
/// `fields` is null or has `n` readable ids; `name` null or NUL-terminated; `fg` null or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmFieldGroupCreate(
    handle: sys::dcgmHandle_t,
    n: c_int,
    fields: *const c_ushort,
    name: *const c_char,
    fg: *mut sys::dcgmFieldGrp_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        if n <= 0 || fields.is_null() || name.is_null() || fg.is_null() {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        // SAFETY: `fields` has `n` entries per the contract.
        let ids = unsafe { std::slice::from_raw_parts(fields, n as usize) }.to_vec();
        let id = with("dcgmFieldGroupCreate", |i| {
            i.field_group_create(handle, ids)
        })?;
        // SAFETY: the caller's contract above.
        unsafe { put(fg, id) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmFieldGroupDestroy(
    handle: sys::dcgmHandle_t,
    fg: sys::dcgmFieldGrp_t,
) -> sys::dcgmReturn_t {
    guard(|| {
        with("dcgmFieldGroupDestroy", |i| {
            i.field_group_destroy(handle, fg)
        })
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmWatchFields(
    handle: sys::dcgmHandle_t,
    group: sys::dcgmGpuGrp_t,
    fg: sys::dcgmFieldGrp_t,
    every_us: i64,
    _max_keep_age: f64,
    _max_keep_samples: c_int,
) -> sys::dcgmReturn_t {
    guard(|| with("dcgmWatchFields", |i| i.watch(handle, group, fg, every_us)))
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmUnwatchFields(
    handle: sys::dcgmHandle_t,
    group: sys::dcgmGpuGrp_t,
    fg: sys::dcgmFieldGrp_t,
) -> sys::dcgmReturn_t {
    guard(|| with("dcgmUnwatchFields", |i| i.unwatch(handle, group, fg)))
}

#[unsafe(no_mangle)]
pub extern "C" fn dcgmUpdateAllFields(
    handle: sys::dcgmHandle_t,
    _wait: c_int,
) -> sys::dcgmReturn_t {
    guard(|| with("dcgmUpdateAllFields", |i| i.update_all(handle)))
}

/// # Safety
/// `entities` has `entity_count` readable pairs, `fields` `field_count` ids, and `values`
/// `entity_count * field_count` writable structs (all non-null when the counts are).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dcgmEntitiesGetLatestValues(
    handle: sys::dcgmHandle_t,
    entities: *mut sys::dcgmGroupEntityPair_t,
    entity_count: c_uint,
    fields: *mut c_ushort,
    field_count: c_uint,
    _flags: c_uint,
    values: *mut sys::dcgmFieldValue_v2,
) -> sys::dcgmReturn_t {
    guard(|| {
        if entities.is_null()
            || fields.is_null()
            || values.is_null()
            || entity_count == 0
            || field_count == 0
        {
            return Err(sys::DCGM_ST_BADPARAM);
        }
        // SAFETY: lengths per the contract above.
        let ents = unsafe { std::slice::from_raw_parts(entities, entity_count as usize) };
        // SAFETY: lengths per the contract above.
        let ids = unsafe { std::slice::from_raw_parts(fields, field_count as usize) };
        let n = ents.len() * ids.len();
        // SAFETY: `values` has `n` writable structs per the contract.
        let out = unsafe { std::slice::from_raw_parts_mut(values, n) };
        with("dcgmEntitiesGetLatestValues", |inst| {
            let ts = inst.timestamp_us(handle);
            for (k, slot) in out.iter_mut().enumerate() {
                let e = &ents[k / ids.len()];
                let field = ids[k % ids.len()];
                slot.version = sys::FIELD_VALUE_VERSION2;
                slot.entityGroupId = e.entityGroupId;
                slot.entityId = e.entityId;
                slot.fieldId = field;
                slot.ts = ts;
                slot.unused = 0;
                match inst.value(handle, (e.entityGroupId, e.entityId), field) {
                    Ok((v, ty)) => {
                        slot.status = sys::DCGM_ST_OK;
                        slot.fieldType = ty.into();
                        match v {
                            Val::F64(x) => slot.value.dbl = x,
                            Val::I64(x) => slot.value.i64_ = x,
                            Val::Str(s) => slot.value.str_ = c_chars(&s),
                        }
                    }
                    Err(st) if st == sys::DCGM_ST_CONNECTION_NOT_VALID => return Err(st),
                    Err(st) => {
                        slot.status = st;
                        slot.fieldType = sys::DCGM_FT_INT64.into();
                        slot.value.i64_ = sys::INT64_BLANK;
                    }
                }
            }
            Ok(())
        })
    })
}
