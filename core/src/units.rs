//! Byte sizes and durations as operators write them: parsing (`33GiB`, `33G`, `33GB`,
//! `512MiB`, `1.5GiB`, plain bytes; `500ms`, `1s`, `1.5m`, `2h`) and formatting for humans.
//!
//! Conventions (documented in `docs/scenarios.md` and the CLI help):
//! - `KiB`/`MiB`/`GiB`/`TiB` are binary (1024-based).
//! - `KB`/`MB`/`GB`/`TB` are decimal (1000-based), as the SI prefixes say.
//! - A bare letter `K`/`M`/`G`/`T` is binary, the way CUDA's
//!   `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` and `nvidia-smi` read it.
//! - A number without a unit is bytes. Negative, empty, non-finite or overflowing sizes are
//!   errors that name the input.

use std::fmt;
use std::time::Duration;

/// Why a size string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("empty size")]
    Empty,
    #[error("size {0:?} is negative")]
    Negative(String),
    #[error("size {0:?} has no number (expected e.g. 33GiB, 512MiB, 1.5G)")]
    NoNumber(String),
    #[error(
        "size {input:?} has an unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB, K, M, G or T)"
    )]
    UnknownUnit { input: String, unit: String },
    #[error("size {0:?} is too large")]
    Overflow(String),
}

const KIB: f64 = 1024.0;

fn unit_factor(unit: &str) -> Option<f64> {
    let f = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => KIB,
        "m" | "mib" => KIB * KIB,
        "g" | "gib" => KIB * KIB * KIB,
        "t" | "tib" => KIB * KIB * KIB * KIB,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    Some(f)
}

/// Parses a byte size such as `33GiB`, `33G`, `33GB`, `512 MiB`, `1.5GiB` or `1048576`.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative(input.to_string()));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num == "." {
        return Err(SizeError::NoNumber(input.to_string()));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| SizeError::NoNumber(input.to_string()))?;
    let unit = unit.trim();
    let factor = unit_factor(unit).ok_or_else(|| SizeError::UnknownUnit {
        input: input.to_string(),
        unit: unit.to_string(),
    })?;
    let bytes = (value * factor).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(SizeError::Overflow(input.to_string()));
    }
    Ok(bytes as u64)
}

/// A byte count that displays in the largest binary unit that keeps it readable
/// (`33.00 GiB`, `512.00 MiB`, `17 B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut i = 0;
        while v >= KIB && i + 1 < UNITS.len() {
            v /= KIB;
            i += 1;
        }
        if i == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.2} {}", UNITS[i])
        }
    }
}

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duration {0:?} is not valid (expected a number with ms, s, m or h, e.g. 500ms, 1s, 2m)")]
pub struct DurationError(pub String);

/// Parses a duration such as `500ms`, `1s`, `1.5s`, `2m` or `1h`. A unit is required.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(input.to_string());
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5", "-1s", "1x", "ms", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn binary_decimal_and_bare_letters() {
        assert_eq!(parse_size("33GiB"), Ok(33 * GIB));
        assert_eq!(parse_size("33G"), Ok(33 * GIB));
        assert_eq!(parse_size("33g"), Ok(33 * GIB));
        assert_eq!(parse_size("33GB"), Ok(33_000_000_000));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(GIB + GIB / 2));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
    }

    #[test]
    fn rejects_bad_sizes_naming_them() {
        assert_eq!(parse_size("-1"), Err(SizeError::Negative("-1".into())));
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("GiB"), Err(SizeError::NoNumber("GiB".into())));
        assert_eq!(
            parse_size("1.2.3G"),
            Err(SizeError::NoNumber("1.2.3G".into()))
        );
        let e = parse_size("33XB").unwrap_err();
        assert!(e.to_string().contains("33XB"), "{e}");
        assert!(matches!(
            parse_size("99999999999999999999TiB"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn displays_readably() {
        assert_eq!(Bytes(33 * GIB).to_string(), "33.00 GiB");
        assert_eq!(Bytes(17).to_string(), "17 B");
        assert_eq!(Bytes(1536 << 20).to_string(), "1.50 GiB");
    }
}
