//! Reading MPS client settings: the `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` value a client was
//! started with.
//!
//! The variable holds either one size for every visible device (`16G`) or a comma-separated
//! list of `DEVICE=SIZE` pairs (`0=16G,1=8192M`), where DEVICE is the device ordinal as the
//! client sees it (after `CUDA_VISIBLE_DEVICES`). Sizes follow [`crate::units`]; a bare `M`
//! or `G` is binary, as CUDA reads it.

use crate::units::{SizeError, parse_size};
use std::collections::BTreeMap;

/// A parsed `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinnedMemLimit {
    /// One limit for every device the client sees.
    All(u64),
    /// A limit per client-visible device ordinal.
    PerDevice(BTreeMap<u32, u64>),
}

/// Why a `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("empty CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")]
    Empty,
    #[error("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT entry {0:?} has a bad device ordinal")]
    BadDevice(String),
    #[error("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT entry {entry:?}: {source}")]
    BadSize { entry: String, source: SizeError },
}

impl PinnedMemLimit {
    /// Parses the variable's value.
    pub fn parse(value: &str) -> Result<Self, LimitError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(LimitError::Empty);
        }
        if !value.contains('=') {
            let size = parse_size(value).map_err(|source| LimitError::BadSize {
                entry: value.to_string(),
                source,
            })?;
            return Ok(Self::All(size));
        }
        let mut map = BTreeMap::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (dev, size) = entry
                .split_once('=')
                .ok_or_else(|| LimitError::BadDevice(entry.to_string()))?;
            let dev: u32 = dev
                .trim()
                .parse()
                .map_err(|_| LimitError::BadDevice(entry.to_string()))?;
            let size = parse_size(size).map_err(|source| LimitError::BadSize {
                entry: entry.to_string(),
                source,
            })?;
            map.insert(dev, size);
        }
        if map.is_empty() {
            return Err(LimitError::Empty);
        }
        Ok(Self::PerDevice(map))
    }

    /// The limit for the client-visible device `ordinal`, if any.
    pub fn for_device(&self, ordinal: u32) -> Option<u64> {
        match self {
            Self::All(size) => Some(*size),
            Self::PerDevice(map) => map.get(&ordinal).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_per_device() {
        assert_eq!(
            PinnedMemLimit::parse("16G"),
            Ok(PinnedMemLimit::All(16 << 30))
        );
        let l = PinnedMemLimit::parse("0=16G, 1=8192M").unwrap();
        assert_eq!(l.for_device(0), Some(16 << 30));
        assert_eq!(l.for_device(1), Some(8192 << 20));
        assert_eq!(l.for_device(2), None);
    }

    #[test]
    fn errors_name_the_entry() {
        assert_eq!(PinnedMemLimit::parse(" "), Err(LimitError::Empty));
        assert!(
            matches!(PinnedMemLimit::parse("x=1G"), Err(LimitError::BadDevice(e)) if e == "x=1G")
        );
        let e = PinnedMemLimit::parse("0=-1G").unwrap_err();
        assert!(e.to_string().contains("0=-1G"), "{e}");
    }
}
