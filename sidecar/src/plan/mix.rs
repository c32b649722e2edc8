//! `--mix NAME=COUNT[@PEAK],...`: which jobs to plan for. A peak given inline (`my-job=2@40GiB`)
//! declares a workload that has no learned profile.

use headroom_core::units::parse_size;

/// Most jobs one plan takes (the assignment searches are exact on small mixes).
pub const MAX_JOBS: u32 = 256;

/// One `NAME=COUNT[@PEAK]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixItem {
    pub name: String,
    pub count: u32,
    /// Declared peak, bytes.
    pub peak: Option<u64>,
}

/// Why `--mix` could not be read; names the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("--mix: empty; give NAME=COUNT[@PEAK],... e.g. --mix ti2v-5b=3,s2v-14b=1")]
    Empty,
    #[error("--mix: bad entry {token:?}: {why}")]
    Bad { token: String, why: String },
    #[error("--mix: {0} jobs in all; at most {MAX_JOBS} are planned at once")]
    TooMany(u64),
}

fn bad(token: &str, why: impl Into<String>) -> MixError {
    MixError::Bad {
        token: token.to_string(),
        why: why.into(),
    }
}

/// Parses `ti2v-5b=3,s2v-14b=1,my-job=2@40GiB`.
pub fn parse(s: &str) -> Result<Vec<MixItem>, MixError> {
    if s.trim().is_empty() {
        return Err(MixError::Empty);
    }
    let mut out: Vec<MixItem> = Vec::new();
    for raw in s.split(',') {
        let token = raw.trim();
        if token.is_empty() {
            return Err(bad(raw, "empty entry (stray comma?)"));
        }
        let Some((name, rest)) = token.split_once('=') else {
            return Err(bad(token, "expected NAME=COUNT or NAME=COUNT@PEAK"));
        };
        let name = name.trim();
        if !crate::workload::valid(name) {
            return Err(bad(
                token,
                "workload name must be 1-128 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        let (count, peak) = match rest.split_once('@') {
            Some((c, p)) => (c.trim(), Some(p.trim())),
            None => (rest.trim(), None),
        };
        let count: u32 = count
            .parse()
            .map_err(|_| bad(token, format!("count {count:?} is not a whole number")))?;
        if count == 0 {
            return Err(bad(token, "count must be at least 1"));
        }
        let peak = match peak {
            None => None,
            Some(p) => match parse_size(p) {
                Ok(0) => return Err(bad(token, "peak must be larger than 0")),
                Ok(b) => Some(b),
                Err(e) => return Err(bad(token, format!("peak: {e}"))),
            },
        };
        if out.iter().any(|m| m.name == name) {
            return Err(bad(token, format!("{name} is listed twice")));
        }
        out.push(MixItem {
            name: name.to_string(),
            count,
            peak,
        });
    }
    let total: u64 = out.iter().map(|m| u64::from(m.count)).sum();
    if total > u64::from(MAX_JOBS) {
        return Err(MixError::TooMany(total));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counts_and_inline_peaks() {
        let m = parse("ti2v-5b=3, s2v-14b=1,my.job=2@40GiB").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].name.as_str(), m[0].count, m[0].peak),
            ("ti2v-5b", 3, None)
        );
        assert_eq!(m[2].peak, Some(40 << 30));
    }

    #[test]
    fn bad_tokens_are_named() {
        let cases = [
            ("ti2v-5b=3,s2v-14b", "s2v-14b"),
            ("ti2v-5b=x", "ti2v-5b=x"),
            ("ti2v-5b=0", "ti2v-5b=0"),
            ("ti2v-5b=-1", "ti2v-5b=-1"),
            ("a b=1", "a b=1"),
            ("ti2v-5b=1,,x=2", ""),
            ("j=1@lots", "j=1@lots"),
            ("j=1@0", "j=1@0"),
            ("j=1,j=2", "j=2"),
        ];
        for (input, token) in cases {
            match parse(input) {
                Err(MixError::Bad { token: t, .. }) => assert_eq!(t, token, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert_eq!(parse(" "), Err(MixError::Empty));
        assert_eq!(parse("a=200,b=100"), Err(MixError::TooMany(300)));
    }
}
