//! Initialisation and teardown (`nvmlInit_v2`, `nvmlInitWithFlags`, `nvmlShutdown`) and
//! `nvmlErrorString`.

use crate::call::{inject, log_call};
use crate::codes::{Ret, SUCCESS};
use crate::runtime;
use headroom_fake::nvml_error;
use nvml_wrapper_sys::bindings::nvmlReturn_t;
use std::ffi::{CString, c_char, c_uint};
use std::sync::OnceLock;

fn init(name: &'static str) -> nvmlReturn_t {
    log_call(name);
    let r = std::panic::catch_unwind(|| runtime::init(|inst| inject(inst, name, None).map(|_| ())));
    match r {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => nvml_error::UNKNOWN.code,
    }
}

/// Loads the scenario named by `HEADROOM_FAKE_SCENARIO` (first call) or adds a reference.
/// Unset or invalid scenario: one line on stderr and `DRIVER_NOT_LOADED` / `UNKNOWN`.
///
/// # Safety
/// None beyond NVML's own contract (no pointers).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init("nvmlInit_v2")
}

/// As `nvmlInit_v2`; the flags are accepted and ignored.
///
/// # Safety
/// None beyond NVML's own contract (no pointers).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init("nvmlInitWithFlags")
}

/// Drops one reference; `UNINITIALIZED` when there is none. A fault naming `nvmlShutdown`
/// applies (a wildcard does not): on error the reference is kept.
///
/// # Safety
/// None beyond NVML's own contract (no pointers).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    log_call("nvmlShutdown");
    let run = || -> Result<(), Ret> {
        if let Ok(inst) = runtime::instance() {
            inject(&inst, "nvmlShutdown", None)?;
        }
        runtime::shutdown()
    };
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => nvml_error::UNKNOWN.code,
    }
}

fn messages() -> &'static [(Ret, CString)] {
    static MESSAGES: OnceLock<Vec<(Ret, CString)>> = OnceLock::new();
    MESSAGES.get_or_init(|| {
        let mut v: Vec<(Ret, CString)> = nvml_error::ERRORS
            .iter()
            .filter_map(|e| CString::new(e.message).ok().map(|m| (e.code, m)))
            .collect();
        v.push((SUCCESS, c"Success".to_owned()));
        v
    })
}

/// A static description of `result` (works before `nvmlInit`).
///
/// # Safety
/// None beyond NVML's own contract: the returned string must not be freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    messages()
        .iter()
        .find(|(code, _)| *code == result)
        .map_or(c"Unknown Error".as_ptr(), |(_, m)| m.as_ptr())
}
