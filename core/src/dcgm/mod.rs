//! The DCGM backend: loads NVIDIA DCGM (`libdcgm.so.4`, else `libdcgm.so.3`, or a given path
//! such as Headroom's fake) at run time, starts an embedded host engine or connects to a
//! standalone one (`nv-hostengine`), and answers what the `dcgm` collector asks: the GPUs and
//! GPU instances DCGM knows, and the latest values of watched fields. All FFI is in `raw`.
//!
//! An embedded engine runs in manual mode: each collection cycle asks it to sample
//! ([`DcgmBackend::update`]). A standalone engine samples on its own at the watch frequency.

mod raw;

pub use raw::{MigEntry, RawValue, Value};

use crate::nvml::{CallError, ErrorKind};
use dcgm_sys as sys;
use std::path::{Path, PathBuf};

/// Libraries tried, in order, when no path is given.
pub const DEFAULT_LIBRARIES: [&str; 2] = ["libdcgm.so.4", "libdcgm.so.3"];

/// How long a connection to a standalone host engine may take.
const CONNECT_TIMEOUT_MS: u32 = 5000;

/// Why DCGM could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DcgmError {
    #[error("DCGM library {library} could not be loaded ({detail})")]
    Load { library: String, detail: String },
    #[error("DCGM library {library} lacks {symbol} (DCGM 3.0 or newer is needed)")]
    Symbol {
        library: String,
        symbol: &'static str,
    },
    #[error("{call}: {text} (DCGM status {status})")]
    Call {
        call: &'static str,
        status: i32,
        text: String,
    },
}

impl DcgmError {
    /// The DCGM status of a failed call.
    pub fn status(&self) -> Option<i32> {
        match self {
            Self::Call { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the connection to the host engine is gone (reconnect before the next call).
    pub fn connection_lost(&self) -> bool {
        self.status() == Some(sys::DCGM_ST_CONNECTION_NOT_VALID)
    }

    /// As a collector's call error.
    pub fn to_call_error(&self, target: Option<String>) -> CallError {
        match self {
            Self::Call { call, status, text } => CallError {
                call,
                target,
                kind: status_kind(*status, text),
            },
            other => CallError {
                call: "dcgm",
                target,
                kind: ErrorKind::Other(other.to_string()),
            },
        }
    }
}

/// Headroom's classification of a DCGM status (never called for `DCGM_ST_OK`).
pub fn status_kind(status: i32, text: &str) -> ErrorKind {
    match status {
        sys::DCGM_ST_NOT_SUPPORTED
        | sys::DCGM_ST_PROFILING_NOT_SUPPORTED
        | sys::DCGM_ST_GPU_NOT_SUPPORTED => ErrorKind::NotSupported,
        sys::DCGM_ST_NO_PERMISSION | sys::DCGM_ST_REQUIRES_ROOT => ErrorKind::NoPermission,
        sys::DCGM_ST_GPU_IS_LOST => ErrorKind::GpuLost,
        sys::DCGM_ST_UNINITIALIZED => ErrorKind::Uninitialized,
        sys::DCGM_ST_INSUFFICIENT_SIZE => ErrorKind::InsufficientSize,
        sys::DCGM_ST_TIMEOUT => ErrorKind::Timeout,
        sys::DCGM_ST_BADPARAM => ErrorKind::InvalidArgument,
        sys::DCGM_ST_FUNCTION_NOT_FOUND => ErrorKind::FunctionMissing,
        _ => ErrorKind::Other(format!("{text} (DCGM status {status})")),
    }
}

/// Where the host engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// Inside this process, manual mode.
    Embedded,
    /// `nv-hostengine` at this address (`host[:port]`, or `unix:PATH` / an absolute path).
    Standalone(String),
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded"),
            Self::Standalone(a) => write!(f, "standalone {a}"),
        }
    }
}

/// An initialised DCGM library with a live host-engine handle.
#[derive(Debug)]
pub struct DcgmBackend {
    lib: raw::Library,
    library: PathBuf,
    engine: Engine,
    handle: Option<raw::Id>,
}

/// A unix socket address: `unix:PATH` or an absolute path.
fn unix_path(address: &str) -> Option<&str> {
    address
        .strip_prefix("unix:")
        .or_else(|| address.starts_with('/').then_some(address))
}

impl DcgmBackend {
    /// Loads DCGM from `library` (else [`DEFAULT_LIBRARIES`] in order), initialises it and
    /// starts an embedded engine, or connects to the standalone one at `address`.
    pub fn open(library: Option<&Path>, address: Option<&str>) -> Result<Self, DcgmError> {
        let (lib, path) = match library {
            Some(p) => (raw::Library::load(p)?, p.to_path_buf()),
            None => Self::load_default()?,
        };
        lib.init()?;
        let engine = match address {
            Some(a) => Engine::Standalone(a.to_string()),
            None => Engine::Embedded,
        };
        let mut backend = Self {
            lib,
            library: path,
            engine,
            handle: None,
        };
        backend.connect()?;
        Ok(backend)
    }

    /// The first of [`DEFAULT_LIBRARIES`] that loads, else the last one's error.
    fn load_default() -> Result<(raw::Library, PathBuf), DcgmError> {
        let mut last = None;
        for name in DEFAULT_LIBRARIES {
            match raw::Library::load(Path::new(name)) {
                Ok(l) => return Ok((l, PathBuf::from(name))),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| DcgmError::Load {
            library: DEFAULT_LIBRARIES.join(", "),
            detail: "nothing tried".into(),
        }))
    }

    fn connect(&mut self) -> Result<raw::Id, DcgmError> {
        if let Some(h) = self.handle {
            return Ok(h);
        }
        let h = match &self.engine {
            Engine::Embedded => self.lib.start_embedded()?,
            Engine::Standalone(a) => match unix_path(a) {
                Some(p) => self.lib.connect(p, true, CONNECT_TIMEOUT_MS)?,
                None => self.lib.connect(a, false, CONNECT_TIMEOUT_MS)?,
            },
        };
        self.handle = Some(h);
        Ok(h)
    }

    /// Drops the handle (after a lost connection); the next call connects again.
    pub fn reset(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = match self.engine {
                Engine::Embedded => self.lib.stop_embedded(h),
                Engine::Standalone(_) => self.lib.disconnect(h),
            };
        }
    }

    /// The path the library was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Where the host engine runs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// DCGM's ids of the GPUs it supports.
    pub fn gpus(&mut self) -> Result<Vec<u32>, DcgmError> {
        let h = self.connect()?;
        self.lib.supported_gpus(h)
    }

    /// GPU-instance and compute-instance entities with their NVML coordinates.
    pub fn mig_hierarchy(&mut self) -> Result<Vec<MigEntry>, DcgmError> {
        let h = self.connect()?;
        self.lib.mig_hierarchy(h)
    }

    /// Watches `fields` of `entities` every `every`; returns the (group, field group) ids to
    /// read and later [`Self::unwatch`].
    pub fn watch(
        &mut self,
        entities: &[(u32, u32)],
        fields: &[u16],
        every: std::time::Duration,
    ) -> Result<Watch, DcgmError> {
        let h = self.connect()?;
        let group = self.lib.group(h, "headroom", entities)?;
        let fg = match self.lib.field_group(h, "headroom", fields) {
            Ok(fg) => fg,
            Err(e) => {
                let _ = self.lib.group_destroy(h, group);
                return Err(e);
            }
        };
        let us = i64::try_from(every.as_micros())
            .unwrap_or(i64::MAX)
            .max(1000);
        // Keep two samples (or 5 s) so a slow cycle still finds the latest one.
        let keep = (every.as_secs_f64() * 2.0).max(5.0);
        if let Err(e) = self.lib.watch(h, group, fg, us, keep, 2) {
            let _ = self.lib.field_group_destroy(h, fg);
            let _ = self.lib.group_destroy(h, group);
            return Err(e);
        }
        Ok(Watch {
            group,
            field_group: fg,
            entities: entities.to_vec(),
            fields: fields.to_vec(),
        })
    }

    /// Stops a watch and frees its groups (errors are ignored: the engine may be gone).
    pub fn unwatch(&mut self, w: Watch) {
        if let Some(h) = self.handle {
            let _ = self.lib.unwatch(h, w.group, w.field_group);
            let _ = self.lib.field_group_destroy(h, w.field_group);
            let _ = self.lib.group_destroy(h, w.group);
        }
    }

    /// Samples every watched field now (embedded engine); a no-op for a standalone engine.
    pub fn update(&mut self) -> Result<(), DcgmError> {
        let h = self.connect()?;
        match self.engine {
            Engine::Embedded => self.lib.update_all(h),
            Engine::Standalone(_) => Ok(()),
        }
    }

    /// The latest values of a watch's fields for its entities (entity-major).
    pub fn latest(&mut self, w: &Watch) -> Result<Vec<RawValue>, DcgmError> {
        let h = self.connect()?;
        self.lib.latest(h, &w.entities, &w.fields)
    }

    /// DCGM's text for a status.
    pub fn status_text(&self, status: i32) -> String {
        self.lib.error_string(status)
    }
}

impl Drop for DcgmBackend {
    fn drop(&mut self) {
        self.reset();
        let _ = self.lib.shutdown();
    }
}

/// A watched set of entities and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    group: raw::Id,
    field_group: raw::Id,
    pub entities: Vec<(u32, u32)>,
    pub fields: Vec<u16>,
}

/// Entity group ids, re-exported for the collector.
pub mod entity {
    pub const GPU: u32 = dcgm_sys::DCGM_FE_GPU;
    pub const GPU_I: u32 = dcgm_sys::DCGM_FE_GPU_I;
    pub const GPU_CI: u32 = dcgm_sys::DCGM_FE_GPU_CI;
}

/// Field ids, re-exported for the collector.
pub use dcgm_sys::field;

/// Statuses the collector tells apart.
pub mod status {
    pub const OK: i32 = dcgm_sys::DCGM_ST_OK;
    pub const NO_DATA: i32 = dcgm_sys::DCGM_ST_NO_DATA;
    pub const STALE_DATA: i32 = dcgm_sys::DCGM_ST_STALE_DATA;
    pub const NOT_WATCHED: i32 = dcgm_sys::DCGM_ST_NOT_WATCHED;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses() {
        assert_eq!(unix_path("unix:/run/dcgm.sock"), Some("/run/dcgm.sock"));
        assert_eq!(unix_path("/run/dcgm.sock"), Some("/run/dcgm.sock"));
        assert_eq!(unix_path("127.0.0.1:5555"), None);
    }

    #[test]
    fn missing_library_names_it() {
        let e = DcgmBackend::open(Some(Path::new("/nonexistent/libdcgm.so.4")), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/libdcgm.so.4"), "{e}");
    }

    #[test]
    fn statuses_classify() {
        assert_eq!(
            status_kind(dcgm_sys::DCGM_ST_PROFILING_NOT_SUPPORTED, "x"),
            ErrorKind::NotSupported
        );
        assert_eq!(
            status_kind(dcgm_sys::DCGM_ST_REQUIRES_ROOT, "x"),
            ErrorKind::NoPermission
        );
        assert!(matches!(
            status_kind(dcgm_sys::DCGM_ST_CONNECTION_NOT_VALID, "gone"),
            ErrorKind::Other(s) if s.contains("gone")
        ));
    }
}
