//! `--simulate SCENARIO` (exporter and sidecar): run the real binary on Headroom's fake NVML. The fake library reads
//! its scenario from `HEADROOM_FAKE_SCENARIO` when NVML is initialised; since changing one's
//! own environment is unsafe once threads exist, the binary re-executes itself (same pid,
//! same arguments) with the variable set, before any thread is started.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The variable the fake NVML reads its scenario path from.
pub const SCENARIO_ENV: &str = "HEADROOM_FAKE_SCENARIO";
/// File name of the fake NVML library, built by the `headroom-fake-nvml` crate.
pub const FAKE_LIBRARY: &str = "libheadroom_fake_nvml.so";

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("scenario {path}: {source}")]
    Scenario {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "fake NVML library {FAKE_LIBRARY} not found next to this binary (looked in {looked}); \
         build it with `cargo build --workspace` or name it with --nvml-lib"
    )]
    NoLibrary { looked: String },
    #[error("could not re-execute {exe} with {SCENARIO_ENV} set: {source}")]
    Exec {
        exe: PathBuf,
        source: std::io::Error,
    },
}

/// Where the fake library is expected: beside the binary, or one level up (test binaries
/// live in `target/<profile>/deps`).
fn candidates() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(FAKE_LIBRARY))
        .collect()
}

/// Makes sure the process runs with the scenario in its environment and returns the fake
/// library's path. Re-executes the process (and so does not return) when the variable is not
/// yet set to this scenario.
pub fn prepare(scenario: &Path, library: Option<&Path>) -> Result<PathBuf, SimulateError> {
    let scenario = scenario
        .canonicalize()
        .map_err(|source| SimulateError::Scenario {
            path: scenario.to_path_buf(),
            source,
        })?;
    let library = match library {
        Some(l) => l.to_path_buf(),
        None => {
            let c = candidates();
            c.iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| SimulateError::NoLibrary {
                    looked: c
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?
        }
    };
    if std::env::var_os(SCENARIO_ENV) != Some(OsString::from(&scenario)) {
        let exe = std::env::current_exe().map_err(|source| SimulateError::Exec {
            exe: PathBuf::from("?"),
            source,
        })?;
        let err = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(SCENARIO_ENV, &scenario)
            .exec();
        return Err(SimulateError::Exec { exe, source: err });
    }
    Ok(library)
}

/// Why [`open`] failed: either step's error, as one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenBackendError {
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    #[error(transparent)]
    Nvml(#[from] crate::nvml::OpenError),
}

/// Opens NVML for a binary: the fake one driven by `simulate` (re-executing the process to set
/// its scenario, see [`prepare`]), else `nvml_lib` or the system's `libnvidia-ml.so.1`.
pub fn open(
    simulate: Option<&Path>,
    nvml_lib: Option<&Path>,
) -> Result<crate::nvml::NvmlBackend, OpenBackendError> {
    let library = match simulate {
        Some(scenario) => Some(prepare(scenario, nvml_lib)?),
        None => nvml_lib.map(Path::to_path_buf),
    };
    Ok(crate::nvml::NvmlBackend::open(library.as_deref())?)
}
