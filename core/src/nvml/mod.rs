//! The NVML backend: loads `libnvidia-ml.so.1` (or a given path, e.g. Headroom's fake) at run
//! time through nvml-wrapper, and answers the queries collectors make, each failure a
//! [`CallError`] naming the call and the device.

mod error;
pub mod raw;

pub use error::{CallError, ErrorKind};
pub use nvml_wrapper::{Device, Nvml};

use nvml_wrapper::error::NvmlError;
use std::path::{Path, PathBuf};

/// The library loaded when no path is given.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// Why NVML could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "NVML library {library} could not be loaded ({detail}); is the NVIDIA driver installed? \
         Point --nvml-lib at libnvidia-ml.so.1, or use --simulate SCENARIO to run on the fake GPU"
    )]
    LibraryNotFound { library: String, detail: String },
    #[error(
        "NVML library {library} loaded, but the NVIDIA driver is not running (NVML_ERROR_DRIVER_NOT_LOADED)"
    )]
    DriverNotLoaded { library: String },
    #[error(
        "NVML library {library} loaded, but this user may not talk to the driver (NVML_ERROR_NO_PERMISSION)"
    )]
    NoPermission { library: String },
    #[error("NVML library {library} failed to initialise: {source}")]
    Init { library: String, source: NvmlError },
}

/// An initialised NVML library.
#[derive(Debug)]
pub struct NvmlBackend {
    nvml: Nvml,
    library: PathBuf,
}

impl NvmlBackend {
    /// Loads and initialises NVML from `library` (default [`DEFAULT_LIBRARY`]).
    pub fn open(library: Option<&Path>) -> Result<Self, OpenError> {
        let path = library.map_or_else(|| PathBuf::from(DEFAULT_LIBRARY), Path::to_path_buf);
        let shown = path.display().to_string();
        let result = Nvml::builder().lib_path(path.as_os_str()).init();
        match result {
            Ok(nvml) => Ok(Self {
                nvml,
                library: path,
            }),
            Err(NvmlError::LibloadingError(e)) => Err(OpenError::LibraryNotFound {
                library: shown,
                detail: e.to_string(),
            }),
            Err(NvmlError::LibraryNotFound) => Err(OpenError::LibraryNotFound {
                library: shown,
                detail: "NVML_ERROR_LIBRARY_NOT_FOUND".into(),
            }),
            Err(NvmlError::DriverNotLoaded) => Err(OpenError::DriverNotLoaded { library: shown }),
            Err(NvmlError::NoPermission) => Err(OpenError::NoPermission { library: shown }),
            Err(source) => Err(OpenError::Init {
                library: shown,
                source,
            }),
        }
    }

    /// The wrapped library.
    pub fn nvml(&self) -> &Nvml {
        &self.nvml
    }

    /// The path the library was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// The driver version (`nvmlSystemGetDriverVersion`).
    pub fn driver_version(&self) -> Result<String, CallError> {
        self.nvml
            .sys_driver_version()
            .map_err(|e| CallError::new("nvmlSystemGetDriverVersion", None, &e))
    }

    /// Number of GPUs (`nvmlDeviceGetCount_v2`).
    pub fn device_count(&self) -> Result<u32, CallError> {
        self.nvml
            .device_count()
            .map_err(|e| CallError::new("nvmlDeviceGetCount_v2", None, &e))
    }

    /// The GPU at `index` (`nvmlDeviceGetHandleByIndex_v2`).
    pub fn device(&self, index: u32) -> Result<Device<'_>, CallError> {
        self.nvml.device_by_index(index).map_err(|e| {
            CallError::new("nvmlDeviceGetHandleByIndex_v2", Some(index.to_string()), &e)
        })
    }
}
