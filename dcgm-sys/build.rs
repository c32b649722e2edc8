//! Generates the DCGM bindings into `$OUT_DIR/bindings.rs` in dynamic-loading mode (a
//! `DcgmLib` struct that dlopens the library and looks every function up; nothing links
//! against libdcgm at build time).
//!
//! Header: with `DCGM_HOME` set to an installed DCGM (`$DCGM_HOME/include/dcgm_agent.h`), the
//! real headers; otherwise `include/headroom_dcgm.h`, Headroom's minimal declaration of the
//! functions, structs and constants it uses. Both give the same items (the same allowlist).
//!
//! bindgen needs libclang (Debian: libclang-dev). Without it, and without `DCGM_HOME`, the
//! build uses `src/bindings_fallback.rs`, bindgen's output for Headroom's header checked in,
//! so that a machine without libclang still builds; the crate's test fails unless the
//! bindings were generated and equal that file (scripts/test.sh installs libclang-dev).
use std::env;
use std::path::PathBuf;

include!("src/functions.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=DCGM_HOME");
    println!("cargo:rerun-if-changed=include/headroom_dcgm.h");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let mut builder = bindgen::Builder::default();
    match env::var_os("DCGM_HOME").filter(|h| !h.is_empty()) {
        Some(home) => {
            let include = PathBuf::from(home).join("include");
            let wrapper = out.join("dcgm_wrapper.h");
            if let Err(e) = std::fs::write(&wrapper, "#include <dcgm_agent.h>\n") {
                println!("cargo:warning=cannot write {}: {e}", wrapper.display());
                std::process::exit(1);
            }
            println!("cargo:rerun-if-changed={}", include.display());
            println!("cargo:rustc-cfg=dcgm_home");
            builder = builder
                .header(wrapper.display().to_string())
                .clang_arg(format!("-I{}", include.display()));
        }
        None => builder = builder.header("include/headroom_dcgm.h"),
    }
    println!("cargo:rustc-check-cfg=cfg(dcgm_home)");
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    let builder = builder
        .allowlist_type(
            "dcgmFieldValue_v2|dcgmMigHierarchy_v2|dcgmConnectV2Params_v2|dcgmGroupEntityPair_t\
             |dcgmReturn_enum|dcgmOperationMode_enum|dcgmGroupType_enum|dcgm_field_entity_group_t",
        )
        .allowlist_var(
            "DCGM_ST_.*|DCGM_FE_.*|DCGM_OPERATION_MODE_.*|DCGM_GROUP_EMPTY|DCGM_MAX_NUM_DEVICES\
             |DCGM_MAX_STR_LENGTH|DCGM_FT_DOUBLE|DCGM_FT_INT64|DCGM_FT_STRING\
             |DCGM_FV_FLAG_LIVE_DATA",
        )
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .dynamic_library_name("DcgmLib")
        .dynamic_link_require_all(false)
        .derive_default(false)
        .layout_tests(false);
    // bindgen panics when it cannot load libclang: catch that (quietly) to fall back.
    std::panic::set_hook(Box::new(|_| {}));
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    let _ = std::panic::take_hook();
    let target = out.join("bindings.rs");
    let failure = match generated {
        Ok(Ok(bindings)) => match bindings.write_to_file(&target) {
            Ok(()) => {
                println!("cargo:rustc-env=DCGM_SYS_BINDINGS=bindgen");
                return;
            }
            Err(e) => format!("cannot write {}: {e}", target.display()),
        },
        Ok(Err(e)) => format!("bindgen failed on the DCGM header: {e}"),
        Err(_) => "bindgen could not load libclang (Debian: libclang-dev)".to_string(),
    };
    if env::var_os("DCGM_HOME").is_some_and(|h| !h.is_empty()) {
        println!("cargo:warning={failure}; DCGM_HOME is set, so there is no fallback");
        std::process::exit(1);
    }
    println!("cargo:warning={failure}; using the checked-in src/bindings_fallback.rs");
    println!("cargo:rerun-if-changed=src/bindings_fallback.rs");
    if let Err(e) = std::fs::copy("src/bindings_fallback.rs", &target) {
        println!("cargo:warning=cannot copy the fallback bindings: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-env=DCGM_SYS_BINDINGS=fallback");
}
