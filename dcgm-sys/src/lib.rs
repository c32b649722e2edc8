//! Raw bindings to NVIDIA DCGM, generated at build time by bindgen in dynamic-loading mode
//! (see `build.rs`): [`DcgmLib`] dlopens `libdcgm.so.N` and looks each function up; a missing
//! symbol is an `Err` in its field, never a link error. Also the DCGM field ids Headroom reads
//! and the struct-version helper that DCGM's `MAKE_DCGM_VERSION` macro is (bindgen cannot
//! expand function-like macros).
//!
//! The struct sizes asserted below are DCGM's ABI (DCGM 3.x and 4.x): they hold for Headroom's
//! own header and must hold for the real headers too (built with `DCGM_HOME`).
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code
)]
#![allow(unsafe_code, unsafe_op_in_unsafe_fn, missing_debug_implementations)]
// bindgen's convenience methods `expect` a symbol to be present; Headroom never calls them
// (it checks every field at load time and calls through the fields).
#![allow(clippy::all, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
include!("functions.rs");

/// How the bindings were made: `bindgen` (at build time) or `fallback` (libclang was missing:
/// the checked-in `src/bindings_fallback.rs`).
pub const BINDINGS_SOURCE: &str = env!("DCGM_SYS_BINDINGS");

/// Whether these bindings came from an installed DCGM's headers (`DCGM_HOME`) rather than
/// Headroom's minimal header.
pub const FROM_DCGM_HOME: bool = cfg!(dcgm_home);

/// DCGM's `MAKE_DCGM_VERSION(type, ver)`: the struct's size in the low 24 bits, the version
/// above.
pub const fn make_version(size: usize, version: u32) -> u32 {
    (size as u32) | (version << 24)
}

/// `dcgmFieldValue_version2`.
pub const FIELD_VALUE_VERSION2: u32 = make_version(std::mem::size_of::<dcgmFieldValue_v2>(), 2);
/// `dcgmMigHierarchy_version2`.
pub const MIG_HIERARCHY_VERSION2: u32 = make_version(std::mem::size_of::<dcgmMigHierarchy_v2>(), 2);
/// `dcgmConnectV2Params_version2`.
pub const CONNECT_V2_PARAMS_VERSION2: u32 =
    make_version(std::mem::size_of::<dcgmConnectV2Params_v2>(), 2);

/// Values at or above this in a double field mean blank (not found, not supported, ...).
pub const FP64_BLANK: f64 = 140_737_488_355_328.0;
/// Values at or above this in an int64 field mean blank.
pub const INT64_BLANK: i64 = 0x7fff_ffff_ffff_fff0;

/// The DCGM field ids Headroom reads. Stable across DCGM releases (DCGM 4 renamed some
/// `PROF` fields, keeping the ids and the old names as aliases).
pub mod field {
    /// GPU UUID (string), to match DCGM's GPU ids to NVML's GPUs.
    pub const DEV_UUID: u16 = 54;
    /// Framebuffer total, MiB.
    pub const DEV_FB_TOTAL: u16 = 250;
    /// Framebuffer free, MiB.
    pub const DEV_FB_FREE: u16 = 251;
    /// Framebuffer used, MiB.
    pub const DEV_FB_USED: u16 = 252;
    /// Ratio of time the graphics engine was active (profiling module).
    pub const PROF_GR_ENGINE_ACTIVE: u16 = 1001;
    /// Ratio of cycles an SM had at least one warp assigned.
    pub const PROF_SM_ACTIVE: u16 = 1002;
    /// Ratio of cycles the tensor (HMMA) pipe was active.
    pub const PROF_PIPE_TENSOR_ACTIVE: u16 = 1004;
    /// Ratio of cycles the device memory interface was active.
    pub const PROF_DRAM_ACTIVE: u16 = 1005;
}

#[cfg(test)]
mod tests {
    /// The checked-in fallback must be exactly what bindgen makes of Headroom's header, so a
    /// build without libclang gets the same bindings.
    #[test]
    #[cfg(not(dcgm_home))]
    fn fallback_matches_generated_bindings() {
        assert_eq!(
            super::BINDINGS_SOURCE,
            "bindgen",
            "these bindings are the fallback: install libclang-dev so bindgen runs"
        );
        let generated = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
        let fallback = include_str!("bindings_fallback.rs");
        assert!(
            generated == fallback,
            "src/bindings_fallback.rs is stale: copy $OUT_DIR/bindings.rs over it"
        );
    }

    #[test]
    fn versions_carry_size_and_number() {
        assert_eq!(super::FIELD_VALUE_VERSION2, 4128 | (2 << 24));
        assert_eq!(super::CONNECT_V2_PARAMS_VERSION2, 16 | (2 << 24));
    }
}

const _: () = {
    assert!(std::mem::size_of::<dcgmFieldValue_v2>() == 4128);
    assert!(std::mem::size_of::<dcgmMigHierarchy_v2>() == 8 + 32 * 14 * 164);
    assert!(std::mem::size_of::<dcgmConnectV2Params_v2>() == 16);
    assert!(std::mem::size_of::<dcgmGroupEntityPair_t>() == 8);
};
