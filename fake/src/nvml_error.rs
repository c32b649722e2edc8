//! NVML return codes by name, as scenario files write them (`error = "GPU_IS_LOST"`), with
//! their numeric values (the `nvmlReturn_t` ABI) and the strings `nvmlErrorString` returns.

/// One NVML error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NvmlError {
    /// Name without the `NVML_ERROR_` prefix, e.g. `GPU_IS_LOST`.
    pub name: &'static str,
    /// The `nvmlReturn_t` value.
    pub code: u32,
    /// What `nvmlErrorString` says.
    pub message: &'static str,
}

const fn e(name: &'static str, code: u32, message: &'static str) -> NvmlError {
    NvmlError {
        name,
        code,
        message,
    }
}

/// Every NVML error code (not `SUCCESS`).
pub const ERRORS: &[NvmlError] = &[
    e("UNINITIALIZED", 1, "Uninitialized"),
    e("INVALID_ARGUMENT", 2, "Invalid Argument"),
    e("NOT_SUPPORTED", 3, "Not Supported"),
    e("NO_PERMISSION", 4, "Insufficient Permissions"),
    e("ALREADY_INITIALIZED", 5, "Already Initialized"),
    e("NOT_FOUND", 6, "Not Found"),
    e("INSUFFICIENT_SIZE", 7, "Insufficient Size"),
    e("INSUFFICIENT_POWER", 8, "Insufficient External Power"),
    e("DRIVER_NOT_LOADED", 9, "Driver Not Loaded"),
    e("TIMEOUT", 10, "Timeout"),
    e("IRQ_ISSUE", 11, "Interrupt Request Issue"),
    e("LIBRARY_NOT_FOUND", 12, "NVML Shared Library Not Found"),
    e("FUNCTION_NOT_FOUND", 13, "Function Not Found"),
    e("CORRUPTED_INFOROM", 14, "Corrupted infoROM"),
    e("GPU_IS_LOST", 15, "GPU is lost"),
    e("RESET_REQUIRED", 16, "GPU requires restart"),
    e(
        "OPERATING_SYSTEM",
        17,
        "The operating system has blocked the request.",
    ),
    e(
        "LIB_RM_VERSION_MISMATCH",
        18,
        "RM has detected an NVML/RM version mismatch.",
    ),
    e("IN_USE", 19, "In use by another client"),
    e("MEMORY", 20, "Insufficient Memory"),
    e("NO_DATA", 21, "No data"),
    e(
        "VGPU_ECC_NOT_SUPPORTED",
        22,
        "The requested vgpu operation is not available on target device, because ECC is enabled",
    ),
    e(
        "INSUFFICIENT_RESOURCES",
        23,
        "Ran out of critical resources, other than memory",
    ),
    e(
        "FREQ_NOT_SUPPORTED",
        24,
        "The requested frequency is not supported",
    ),
    e("ARGUMENT_VERSION_MISMATCH", 25, "Version mismatch"),
    e("DEPRECATED", 26, "Deprecated"),
    e("NOT_READY", 27, "System is not ready"),
    e("GPU_NOT_FOUND", 28, "GPU not found"),
    e("INVALID_STATE", 29, "Invalid state"),
    e("RESET_TYPE_NOT_SUPPORTED", 30, "Reset type not supported"),
    e("UNKNOWN", 999, "Unknown Error"),
];

/// `NVML_SUCCESS`.
pub const SUCCESS: u32 = 0;

/// The error named `name` (with or without the `NVML_ERROR_` prefix, any case).
pub fn by_name(name: &str) -> Option<NvmlError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("NVML_ERROR_").unwrap_or(&upper);
    ERRORS.iter().copied().find(|e| e.name == bare)
}

/// The error with numeric code `code`.
pub fn by_code(code: u32) -> Option<NvmlError> {
    ERRORS.iter().copied().find(|e| e.code == code)
}

/// Looks up a well-known error by name; for the constants below.
const fn known(index: usize) -> NvmlError {
    ERRORS[index]
}

pub const UNINITIALIZED: NvmlError = known(0);
pub const INVALID_ARGUMENT: NvmlError = known(1);
pub const NOT_SUPPORTED: NvmlError = known(2);
pub const NOT_FOUND: NvmlError = known(5);
pub const INSUFFICIENT_SIZE: NvmlError = known(6);
pub const TIMEOUT: NvmlError = known(9);
pub const GPU_IS_LOST: NvmlError = known(14);
pub const ARGUMENT_VERSION_MISMATCH: NvmlError = known(24);
pub const UNKNOWN: NvmlError = known(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_constants_agree() {
        assert_eq!(by_name("gpu_is_lost"), Some(GPU_IS_LOST));
        assert_eq!(by_name("NVML_ERROR_TIMEOUT").map(|e| e.code), Some(10));
        assert_eq!(by_code(999), Some(UNKNOWN));
        assert_eq!(by_name("NOPE"), None);
        for (c, name) in [
            (UNINITIALIZED, "UNINITIALIZED"),
            (INVALID_ARGUMENT, "INVALID_ARGUMENT"),
            (NOT_SUPPORTED, "NOT_SUPPORTED"),
            (NOT_FOUND, "NOT_FOUND"),
            (INSUFFICIENT_SIZE, "INSUFFICIENT_SIZE"),
            (TIMEOUT, "TIMEOUT"),
            (GPU_IS_LOST, "GPU_IS_LOST"),
            (ARGUMENT_VERSION_MISMATCH, "ARGUMENT_VERSION_MISMATCH"),
            (UNKNOWN, "UNKNOWN"),
        ] {
            assert_eq!(c.name, name);
        }
    }
}
