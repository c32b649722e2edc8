//! NVML return codes under short names.

use nvml_wrapper_sys::bindings as b;

pub(crate) type Ret = b::nvmlReturn_t;

pub(crate) const SUCCESS: Ret = b::nvmlReturn_enum_NVML_SUCCESS;
pub(crate) const UNINITIALIZED: Ret = b::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub(crate) const INVALID_ARGUMENT: Ret = b::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub(crate) const NOT_SUPPORTED: Ret = b::nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub(crate) const NOT_FOUND: Ret = b::nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub(crate) const INSUFFICIENT_SIZE: Ret = b::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub(crate) const DRIVER_NOT_LOADED: Ret = b::nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED;
pub(crate) const TIMEOUT: Ret = b::nvmlReturn_enum_NVML_ERROR_TIMEOUT;
pub(crate) const ARGUMENT_VERSION_MISMATCH: Ret =
    b::nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
pub(crate) const UNKNOWN: Ret = b::nvmlReturn_enum_NVML_ERROR_UNKNOWN;

/// Result of an API body: `Err` carries the NVML error code.
pub(crate) type ApiResult = Result<(), Ret>;
