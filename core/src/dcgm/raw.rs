//! The raw DCGM calls: every `unsafe` of the DCGM backend is in this file. Each function takes
//! plain Rust values, calls one DCGM function through the dynamically loaded [`DcgmLib`]
//! and returns owned Rust values or a [`DcgmError`] naming the call and DCGM's status.
#![allow(unsafe_code)]

use super::DcgmError;
use dcgm_sys as sys;
use std::ffi::{CStr, CString, c_char};
use std::path::Path;

/// A DCGM handle (`dcgmHandle_t`), group or field group id.
pub(crate) type Id = usize;

/// The loaded library with every function Headroom calls present.
pub(crate) struct Library {
    lib: sys::DcgmLib,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Library")
    }
}

/// Looks a symbol up, or says which one the library lacks.
macro_rules! sym {
    ($self:ident, $name:ident) => {
        match $self.lib.$name.as_ref() {
            Ok(f) => *f,
            Err(_) => {
                return Err(DcgmError::Call {
                    call: stringify!($name),
                    status: sys::DCGM_ST_FUNCTION_NOT_FOUND,
                    text: "function missing from the library".into(),
                })
            }
        }
    };
}

/// One value of `dcgmEntitiesGetLatestValues`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawValue {
    pub entity_group: u32,
    pub entity_id: u32,
    pub field: u16,
    pub status: i32,
    pub value: Value,
}

/// A field's value; `Blank` for DCGM's blank markers (not found, not supported, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    F64(f64),
    I64(i64),
    Str(String),
    Blank,
}

/// One entry of the MIG hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigEntry {
    pub entity_group: u32,
    pub entity_id: u32,
    pub gpu_uuid: String,
    pub nvml_gpu_index: u32,
    pub nvml_instance_id: u32,
    pub nvml_compute_instance_id: u32,
}

fn c_text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Library {
    /// dlopens `path` and checks every function is there.
    pub(crate) fn load(path: &Path) -> Result<Self, DcgmError> {
        // SAFETY: loading a shared library runs its initialisers; libdcgm's (or Headroom's
        // fake's) are the vendor's and have no preconditions on this process.
        let lib = unsafe { sys::DcgmLib::new(path.as_os_str()) }.map_err(|e| DcgmError::Load {
            library: path.display().to_string(),
            detail: e.to_string(),
        })?;
        // In `sys::FUNCTIONS` order.
        let present = [
            lib.dcgmInit.is_ok(),
            lib.dcgmShutdown.is_ok(),
            lib.dcgmStartEmbedded.is_ok(),
            lib.dcgmStopEmbedded.is_ok(),
            lib.dcgmConnect_v2.is_ok(),
            lib.dcgmDisconnect.is_ok(),
            lib.errorString.is_ok(),
            lib.dcgmGetAllSupportedDevices.is_ok(),
            lib.dcgmGetGpuInstanceHierarchy.is_ok(),
            lib.dcgmGroupCreate.is_ok(),
            lib.dcgmGroupAddEntity.is_ok(),
            lib.dcgmGroupDestroy.is_ok(),
            lib.dcgmFieldGroupCreate.is_ok(),
            lib.dcgmFieldGroupDestroy.is_ok(),
            lib.dcgmWatchFields.is_ok(),
            lib.dcgmUnwatchFields.is_ok(),
            lib.dcgmUpdateAllFields.is_ok(),
            lib.dcgmEntitiesGetLatestValues.is_ok(),
        ];
        if let Some(i) = present.iter().position(|ok| !ok) {
            return Err(DcgmError::Symbol {
                library: path.display().to_string(),
                symbol: sys::FUNCTIONS[i],
            });
        }
        Ok(Self { lib })
    }

    fn check(&self, call: &'static str, status: sys::dcgmReturn_t) -> Result<(), DcgmError> {
        if status == sys::DCGM_ST_OK {
            Ok(())
        } else {
            Err(DcgmError::Call {
                call,
                status,
                text: self.error_string(status),
            })
        }
    }

    /// DCGM's text for a status (`errorString`).
    pub(crate) fn error_string(&self, status: i32) -> String {
        let Ok(f) = self.lib.errorString.as_ref() else {
            return format!("DCGM status {status}");
        };
        // SAFETY: errorString takes any status and returns null or a static NUL-terminated
        // string owned by the library, which stays loaded while `self` lives.
        let p = unsafe { f(status) };
        if p.is_null() {
            return format!("DCGM status {status}");
        }
        // SAFETY: non-null and NUL-terminated, per DCGM's contract above.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    pub(crate) fn init(&self) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmInit);
        // SAFETY: no arguments.
        self.check("dcgmInit", unsafe { f() })
    }

    pub(crate) fn shutdown(&self) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmShutdown);
        // SAFETY: no arguments.
        self.check("dcgmShutdown", unsafe { f() })
    }

    /// An embedded host engine in manual mode (fields update on [`Self::update_all`]).
    pub(crate) fn start_embedded(&self) -> Result<Id, DcgmError> {
        let f = sym!(self, dcgmStartEmbedded);
        let mut handle: sys::dcgmHandle_t = 0;
        // SAFETY: `handle` is a valid out-pointer for the call's duration.
        let st = unsafe { f(sys::DCGM_OPERATION_MODE_MANUAL, &mut handle) };
        self.check("dcgmStartEmbedded", st).map(|()| handle)
    }

    pub(crate) fn stop_embedded(&self, handle: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmStopEmbedded);
        // SAFETY: plain value argument.
        self.check("dcgmStopEmbedded", unsafe { f(handle) })
    }

    /// Connects to a standalone host engine (`host[:port]`, or a unix socket path).
    pub(crate) fn connect(
        &self,
        address: &str,
        unix_socket: bool,
        timeout_ms: u32,
    ) -> Result<Id, DcgmError> {
        let f = sym!(self, dcgmConnect_v2);
        let addr = CString::new(address).map_err(|_| DcgmError::Call {
            call: "dcgmConnect_v2",
            status: sys::DCGM_ST_BADPARAM,
            text: "address contains a NUL byte".into(),
        })?;
        let mut params = sys::dcgmConnectV2Params_v2 {
            version: sys::CONNECT_V2_PARAMS_VERSION2,
            persistAfterDisconnect: 0,
            timeoutMs: timeout_ms,
            addressIsUnixSocket: u32::from(unix_socket),
        };
        let mut handle: sys::dcgmHandle_t = 0;
        // SAFETY: `addr` is NUL-terminated and `params`/`handle` valid for the call.
        let st = unsafe { f(addr.as_ptr(), &mut params, &mut handle) };
        self.check("dcgmConnect_v2", st).map(|()| handle)
    }

    pub(crate) fn disconnect(&self, handle: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmDisconnect);
        // SAFETY: plain value argument.
        self.check("dcgmDisconnect", unsafe { f(handle) })
    }

    /// DCGM's ids of the GPUs it supports.
    pub(crate) fn supported_gpus(&self, handle: Id) -> Result<Vec<u32>, DcgmError> {
        let f = sym!(self, dcgmGetAllSupportedDevices);
        let mut ids = [0u32; sys::DCGM_MAX_NUM_DEVICES as usize];
        let mut count: i32 = 0;
        // SAFETY: `ids` has DCGM_MAX_NUM_DEVICES entries, as the call requires.
        let st = unsafe { f(handle, ids.as_mut_ptr(), &mut count) };
        self.check("dcgmGetAllSupportedDevices", st)?;
        let n = usize::try_from(count).unwrap_or(0).min(ids.len());
        Ok(ids[..n].to_vec())
    }

    /// The GPU-instance and compute-instance entities with their NVML coordinates.
    pub(crate) fn mig_hierarchy(&self, handle: Id) -> Result<Vec<MigEntry>, DcgmError> {
        let f = sym!(self, dcgmGetGpuInstanceHierarchy);
        // SAFETY: the struct is plain integers and chars: all-zero is a valid value. (72 KiB:
        // built on the stack once per call, then boxed.)
        let mut h: Box<sys::dcgmMigHierarchy_v2> = Box::new(unsafe { std::mem::zeroed() });
        h.version = sys::MIG_HIERARCHY_VERSION2;
        // SAFETY: `h` points to a whole, versioned dcgmMigHierarchy_v2.
        let st = unsafe { f(handle, &mut *h) };
        self.check("dcgmGetGpuInstanceHierarchy", st)?;
        let n = (h.count as usize).min(h.entityList.len());
        Ok(h.entityList[..n]
            .iter()
            .map(|e| MigEntry {
                entity_group: e.entity.entityGroupId,
                entity_id: e.entity.entityId,
                gpu_uuid: c_text(&e.info.gpuUuid),
                nvml_gpu_index: e.info.nvmlGpuIndex,
                nvml_instance_id: e.info.nvmlInstanceId,
                nvml_compute_instance_id: e.info.nvmlComputeInstanceId,
            })
            .collect())
    }

    /// An empty entity group holding `entities` (group id, entity id).
    pub(crate) fn group(
        &self,
        handle: Id,
        name: &str,
        entities: &[(u32, u32)],
    ) -> Result<Id, DcgmError> {
        let create = sym!(self, dcgmGroupCreate);
        let add = sym!(self, dcgmGroupAddEntity);
        let name = CString::new(name).unwrap_or_default();
        let mut group: sys::dcgmGpuGrp_t = 0;
        // SAFETY: `name` is NUL-terminated, `group` a valid out-pointer.
        let st = unsafe { create(handle, sys::DCGM_GROUP_EMPTY, name.as_ptr(), &mut group) };
        self.check("dcgmGroupCreate", st)?;
        for &(eg, eid) in entities {
            // SAFETY: plain value arguments.
            let st = unsafe { add(handle, group, eg, eid) };
            if let Err(e) = self.check("dcgmGroupAddEntity", st) {
                let _ = self.group_destroy(handle, group);
                return Err(e);
            }
        }
        Ok(group)
    }

    pub(crate) fn group_destroy(&self, handle: Id, group: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmGroupDestroy);
        // SAFETY: plain value arguments.
        self.check("dcgmGroupDestroy", unsafe { f(handle, group) })
    }

    pub(crate) fn field_group(
        &self,
        handle: Id,
        name: &str,
        fields: &[u16],
    ) -> Result<Id, DcgmError> {
        let f = sym!(self, dcgmFieldGroupCreate);
        let name = CString::new(name).unwrap_or_default();
        let mut fg: sys::dcgmFieldGrp_t = 0;
        let n = i32::try_from(fields.len()).unwrap_or(i32::MAX);
        // SAFETY: `fields` holds `n` ids, `name` is NUL-terminated, `fg` a valid out-pointer.
        let st = unsafe { f(handle, n, fields.as_ptr(), name.as_ptr(), &mut fg) };
        self.check("dcgmFieldGroupCreate", st).map(|()| fg)
    }

    pub(crate) fn field_group_destroy(&self, handle: Id, fg: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmFieldGroupDestroy);
        // SAFETY: plain value arguments.
        self.check("dcgmFieldGroupDestroy", unsafe { f(handle, fg) })
    }

    pub(crate) fn watch(
        &self,
        handle: Id,
        group: Id,
        fg: Id,
        every_us: i64,
        keep_age_s: f64,
        keep_samples: i32,
    ) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmWatchFields);
        // SAFETY: plain value arguments.
        let st = unsafe { f(handle, group, fg, every_us, keep_age_s, keep_samples) };
        self.check("dcgmWatchFields", st)
    }

    pub(crate) fn unwatch(&self, handle: Id, group: Id, fg: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmUnwatchFields);
        // SAFETY: plain value arguments.
        self.check("dcgmUnwatchFields", unsafe { f(handle, group, fg) })
    }

    /// Makes a manual-mode engine sample every watched field now (and waits for it).
    pub(crate) fn update_all(&self, handle: Id) -> Result<(), DcgmError> {
        let f = sym!(self, dcgmUpdateAllFields);
        // SAFETY: plain value arguments.
        self.check("dcgmUpdateAllFields", unsafe { f(handle, 1) })
    }

    /// The latest value of every field of every entity (entity-major order).
    pub(crate) fn latest(
        &self,
        handle: Id,
        entities: &[(u32, u32)],
        fields: &[u16],
    ) -> Result<Vec<RawValue>, DcgmError> {
        let f = sym!(self, dcgmEntitiesGetLatestValues);
        if entities.is_empty() || fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut pairs: Vec<sys::dcgmGroupEntityPair_t> = entities
            .iter()
            .map(|&(g, e)| sys::dcgmGroupEntityPair_t {
                entityGroupId: g,
                entityId: e,
            })
            .collect();
        let mut ids = fields.to_vec();
        let n = pairs.len() * ids.len();
        let mut values: Vec<sys::dcgmFieldValue_v2> = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: the struct is plain integers, a float and chars: all-zero is valid.
            let mut v: sys::dcgmFieldValue_v2 = unsafe { std::mem::zeroed() };
            v.version = sys::FIELD_VALUE_VERSION2;
            values.push(v);
        }
        let (ec, fc) = (
            u32::try_from(pairs.len()).unwrap_or(u32::MAX),
            u32::try_from(ids.len()).unwrap_or(u32::MAX),
        );
        // SAFETY: `pairs` has `ec` entries, `ids` `fc`, `values` `ec * fc` versioned structs.
        let st = unsafe {
            f(
                handle,
                pairs.as_mut_ptr(),
                ec,
                ids.as_mut_ptr(),
                fc,
                0,
                values.as_mut_ptr(),
            )
        };
        self.check("dcgmEntitiesGetLatestValues", st)?;
        Ok(values
            .iter()
            .map(|v| RawValue {
                entity_group: v.entityGroupId,
                entity_id: v.entityId,
                field: v.fieldId,
                status: v.status,
                value: decode(v),
            })
            .collect())
    }
}

fn decode(v: &sys::dcgmFieldValue_v2) -> Value {
    match v.fieldType as u8 {
        sys::DCGM_FT_DOUBLE => {
            // SAFETY: the field type says the union holds a double.
            let d = unsafe { v.value.dbl };
            if d.is_finite() && d < sys::FP64_BLANK {
                Value::F64(d)
            } else {
                Value::Blank
            }
        }
        sys::DCGM_FT_INT64 => {
            // SAFETY: the field type says the union holds an int64.
            let i = unsafe { v.value.i64_ };
            if i < sys::INT64_BLANK {
                Value::I64(i)
            } else {
                Value::Blank
            }
        }
        sys::DCGM_FT_STRING => {
            // SAFETY: the field type says the union holds a NUL-terminated string (at most
            // DCGM_MAX_STR_LENGTH chars; `c_text` stops at the array's end regardless).
            let s = c_text(unsafe { &v.value.str_ });
            // DCGM's blank strings look like "<<<NULL>>>".
            if s.is_empty() || s.starts_with("<<<") {
                Value::Blank
            } else {
                Value::Str(s)
            }
        }
        _ => Value::Blank,
    }
}
