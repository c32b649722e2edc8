//! `libheadroom_fake_nvml.so`: a fake NVML driven by a Headroom scenario file
//! (`HEADROOM_FAKE_SCENARIO`, format in `docs/scenarios.md`). Load it in place of
//! `libnvidia-ml.so.1` (`nvml_wrapper::Nvml::builder().lib_path(..)`) to run the real
//! binaries through the real FFI path on a machine without a GPU.
//!
//! What it answers comes from `headroom_fake`: GPUs and MIG instances from the scenario,
//! processes from the scenario's memory timelines plus the live `fake-gpu-job`s registered
//! in `HEADROOM_FAKE_STATE_DIR`, values at the current virtual time, injected errors and
//! hangs from `[[fault]]`, Xid events from `[[xid]]`/`[[xid_storm]]`.
//!
//! Unsafe code is confined to reading and writing the caller's pointers at the FFI boundary
//! (the `out` module); everything behind it is safe Rust.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// NVML's symbol names are not snake case.
#![allow(non_snake_case)]

mod api;
mod call;
mod codes;
mod handle;
mod out;
mod runtime;
