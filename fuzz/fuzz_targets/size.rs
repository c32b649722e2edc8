//! Size and duration parsing (`core/src/units.rs`: `parse_size`, `parse_duration`) and the
//! `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` value built on it (`core/src/mps.rs`), on arbitrary
//! UTF-8 text (every flag, config field and environment value goes through these).
//!
//! Properties beyond "no panic": a parsed size prints as plain bytes that parse back to the
//! same number; its `Bytes` display (2 decimals in the largest binary unit) parses back to
//! within half a hundredth of that unit, or is out of range only at the very top of `u64`;
//! ASCII case and surrounding whitespace change nothing; every error but "empty" quotes the
//! input; a duration re-printed in seconds parses back to within a nanosecond (plus float
//! rounding); an MPS limit re-encoded (`16G` as bytes, `0=…,1=…` pairs) parses back equal.
#![no_main]
#![forbid(unsafe_code)]

use headroom_core::mps::PinnedMemLimit;
use headroom_core::units::{Bytes, SizeError, parse_duration, parse_size};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fn check_size(s: &str) {
    let got = parse_size(s);
    // Case and surrounding whitespace do not matter.
    let same = |other: &str| {
        let r = parse_size(other);
        assert_eq!(
            r.as_ref().ok(),
            got.as_ref().ok(),
            "{s:?} vs {other:?}: {got:?} / {r:?}"
        );
    };
    same(&s.to_ascii_uppercase());
    same(&s.to_ascii_lowercase());
    same(&format!(" \t{s}\n "));
    match got {
        Ok(n) => {
            // Plain bytes: n is an integer-valued f64 below 2^64, so it prints and parses back
            // exactly.
            assert_eq!(parse_size(&n.to_string()), Ok(n), "{s:?}");
            // The human form, 2 decimals in the largest binary unit up to TiB.
            let shown = Bytes(n).to_string();
            let unit = [1u64 << 40, 1 << 30, 1 << 20, 1 << 10]
                .into_iter()
                .find(|u| n >= *u)
                .unwrap_or(1);
            match parse_size(&shown) {
                Ok(m) => {
                    let err = (m as f64 - n as f64).abs();
                    let bound = 0.005 * unit as f64 + 1.0 + n as f64 * 1e-15;
                    assert!(err <= bound, "{n} shown as {shown:?} reads back as {m}");
                }
                Err(SizeError::Overflow(_)) => {
                    // "16777216.00 TiB" is 2^64: only sizes that round up to it.
                    assert!(
                        n as f64 >= u64::MAX as f64 - 0.005 * unit as f64,
                        "{n} shown as {shown:?} overflows"
                    );
                }
                Err(e) => panic!("{n} shown as {shown:?} does not parse: {e}"),
            }
        }
        Err(SizeError::Empty) => assert!(s.trim().is_empty(), "{s:?}"),
        Err(e) => {
            assert!(!s.trim().is_empty(), "{s:?}: {e}");
            let quoted = format!("{s:?}");
            assert!(
                e.to_string().contains(&quoted),
                "{e} does not name {quoted}"
            );
        }
    }
}

fn check_duration(s: &str) {
    let got = parse_duration(s);
    assert_eq!(
        parse_duration(&format!(" {s}\t")).ok(),
        got.as_ref().ok().copied()
    );
    match got {
        Ok(d) => {
            let secs = d.as_secs_f64();
            let back = parse_duration(&format!("{secs}s"))
                .unwrap_or_else(|e| panic!("{d:?} from {s:?} re-printed: {e}"));
            let diff = back.abs_diff(d);
            let bound = Duration::from_nanos(1) + d.mul_f64(1e-15);
            assert!(diff <= bound, "{s:?}: {d:?} came back as {back:?}");
        }
        Err(e) => {
            let quoted = format!("{s:?}");
            assert!(
                e.to_string().contains(&quoted),
                "{e} does not name {quoted}"
            );
        }
    }
}

fn check_mps_limit(s: &str) {
    let Ok(limit) = PinnedMemLimit::parse(s) else {
        return;
    };
    let encoded = match &limit {
        PinnedMemLimit::All(n) => {
            assert_eq!(parse_size(s), Ok(*n), "{s:?}");
            assert_eq!(limit.for_device(u32::MAX), Some(*n));
            n.to_string()
        }
        PinnedMemLimit::PerDevice(map) => {
            assert!(!map.is_empty());
            // One entry per comma-separated piece at most: no amplification.
            assert!(map.len() <= s.matches(',').count() + 1, "{s:?}");
            for (dev, n) in map {
                assert_eq!(limit.for_device(*dev), Some(*n));
            }
            map.iter()
                .map(|(d, n)| format!("{d}={n}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    assert_eq!(
        PinnedMemLimit::parse(&encoded).as_ref(),
        Ok(&limit),
        "{s:?} → {encoded:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_size(s);
    check_duration(s);
    check_mps_limit(s);
});
