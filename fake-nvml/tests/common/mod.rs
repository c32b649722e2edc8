//! Shared by the fake NVML integration tests: where the built library is, and one-time
//! environment setup. Each test file is its own process (its own library instance, one
//! scenario); the environment is set once, before any thread loads the library.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code
#![allow(dead_code, unsafe_code)]

use nvml_wrapper::Nvml;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The built library. `cargo test` refreshes `target/<profile>/deps/libheadroom_fake_nvml.so`
/// (next to this test binary) before running the tests; `cargo build` also copies it to
/// `target/<profile>/`. Prefer the one in `deps/`, which is never stale; both are found
/// relative to this binary, so any `CARGO_TARGET_DIR` works.
pub fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libheadroom_fake_nvml.so"),
        deps.parent().unwrap().join("libheadroom_fake_nvml.so"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("libheadroom_fake_nvml.so not built (looked at {candidates:?})"))
}

/// A scenario shipped in `scenarios/`.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// A fresh directory for this test process under cargo's `target/tmp` (the library uses it
/// until the process exits, so it is not removed; `cargo clean` does).
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fake-nvml-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

static ENV: Once = Once::new();

/// Sets the environment once per process (later calls are no-ops), before any test thread
/// initialises the library.
pub fn set_env_once(vars: &[(&str, Option<&str>)]) {
    ENV.call_once(|| {
        for (k, v) in vars {
            // SAFETY: runs once, before any thread of this process loads the fake NVML or
            // reads these variables; the test harness reads its own variables at start-up.
            unsafe {
                match v {
                    Some(v) => std::env::set_var(k, v),
                    None => std::env::remove_var(k),
                }
            }
        }
    });
}

/// Initialises the fake NVML.
pub fn nvml() -> Nvml {
    Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .unwrap()
}
