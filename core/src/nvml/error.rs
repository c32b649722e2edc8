//! Errors of NVML calls, classified the way collectors and metrics need them: which call
//! failed and why, with a stable `reason` string for labels.

use nvml_wrapper::error::NvmlError;
use std::fmt;

/// Why an NVML call failed, reduced to what Headroom acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The GPU or driver does not support the query: the value is simply absent.
    NotSupported,
    NoPermission,
    GpuLost,
    Uninitialized,
    InsufficientSize,
    Timeout,
    NotFound,
    InvalidArgument,
    /// The loaded library lacks the symbol (an old driver, or a fake without it).
    FunctionMissing,
    Unknown,
    Other(String),
}

impl ErrorKind {
    /// A stable snake_case reason for metric labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotSupported => "not_supported",
            Self::NoPermission => "no_permission",
            Self::GpuLost => "gpu_lost",
            Self::Uninitialized => "uninitialized",
            Self::InsufficientSize => "insufficient_size",
            Self::Timeout => "timeout",
            Self::NotFound => "not_found",
            Self::InvalidArgument => "invalid_argument",
            Self::FunctionMissing => "function_missing",
            Self::Unknown => "unknown",
            Self::Other(_) => "other",
        }
    }
}

impl From<&NvmlError> for ErrorKind {
    fn from(e: &NvmlError) -> Self {
        match e {
            NvmlError::NotSupported => Self::NotSupported,
            NvmlError::NoPermission => Self::NoPermission,
            NvmlError::GpuLost => Self::GpuLost,
            NvmlError::Uninitialized => Self::Uninitialized,
            NvmlError::InsufficientSize(_) => Self::InsufficientSize,
            NvmlError::Timeout => Self::Timeout,
            NvmlError::NotFound => Self::NotFound,
            NvmlError::InvalidArg => Self::InvalidArgument,
            NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound => Self::FunctionMissing,
            NvmlError::Unknown => Self::Unknown,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A failed NVML call: which function, on which device, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CallError {
    pub call: &'static str,
    /// The GPU index (or `index/MIG-uuid`) the call was about, when it was about one.
    pub target: Option<String>,
    pub kind: ErrorKind,
}

impl CallError {
    pub fn new(call: &'static str, target: Option<String>, e: &NvmlError) -> Self {
        Self {
            call,
            target,
            kind: e.into(),
        }
    }

    /// Whether the value is merely unavailable on this hardware (absent, not a failure).
    pub fn is_not_supported(&self) -> bool {
        self.kind == ErrorKind::NotSupported || self.kind == ErrorKind::FunctionMissing
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.call)?;
        if let Some(t) = &self.target {
            write!(f, " (gpu {t})")?;
        }
        match &self.kind {
            ErrorKind::Other(msg) => write!(f, ": {msg}"),
            kind => write!(f, ": {}", kind.reason()),
        }
    }
}
