//! `/proc/PID/environ` as the process collector reads it (`core/src/procfs.rs`
//! `parse_environ` with the keys of `core/src/collect/process.rs`, then
//! `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` through `core/src/mps.rs`), and `/proc/PID/stat`'s start
//! time (`parse_stat_start_time`) on the same bytes read as text. Any process on the host
//! controls its own environment and command name, so both are hostile input.
//!
//! Properties beyond "no panic": only the requested keys come back, with values no larger
//! than the input (no amplification); re-encoding the result as `KEY=VALUE\0` entries parses
//! back to the same map; a later entry wins over an earlier one; unrelated entries before the
//! input change nothing. The stat start time, when found, is a field of the text after the
//! last `)`.
#![no_main]
#![forbid(unsafe_code)]

use headroom_core::mps::PinnedMemLimit;
use headroom_core::procfs::{
    MPS_LIMIT_VAR, VISIBLE_DEVICES_VAR, WORKLOAD_VAR, parse_environ, parse_stat_start_time,
};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

const KEYS: [&str; 3] = [MPS_LIMIT_VAR, VISIBLE_DEVICES_VAR, WORKLOAD_VAR];

fn encode(env: &HashMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in env {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn check_environ(raw: &[u8]) {
    let env = parse_environ(raw, &KEYS);
    assert!(env.len() <= KEYS.len());
    let stored: usize = env.iter().map(|(k, v)| k.len() + 1 + v.len()).sum();
    assert!(
        stored <= raw.len(),
        "{stored} bytes kept from {} read",
        raw.len()
    );
    for (k, v) in &env {
        assert!(KEYS.contains(&k.as_str()), "unrequested key {k:?}");
        assert!(!v.contains('\0'), "{k}={v:?}");
    }
    assert_eq!(parse_environ(&encode(&env), &KEYS), env);

    // Junk and other variables before it change nothing.
    let mut prefixed = b"PATH=/usr/bin\0no-equals-sign\0\xff\xfe=x\0".to_vec();
    prefixed.extend_from_slice(raw);
    assert_eq!(parse_environ(&prefixed, &KEYS), env);

    // A later entry wins.
    let mut later = raw.to_vec();
    later.extend_from_slice(b"\0HEADROOM_WORKLOAD=fuzz-later\0");
    assert_eq!(
        parse_environ(&later, &KEYS)
            .get(WORKLOAD_VAR)
            .map(String::as_str),
        Some("fuzz-later")
    );

    // What the collector does next with the MPS limit.
    if let Some(limit) = env
        .get(MPS_LIMIT_VAR)
        .and_then(|v| PinnedMemLimit::parse(v).ok())
    {
        let _ = limit.for_device(0);
    }
}

fn check_stat(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    if let Some(t) = parse_stat_start_time(&text) {
        let after = &text[text.rfind(')').unwrap() + 1..];
        assert!(
            after.split_whitespace().any(|f| f.parse::<u64>() == Ok(t)),
            "start time {t} is not a field of {after:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check_environ(data);
    check_stat(data);
});
