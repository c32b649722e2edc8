//! The fake GPU's contention model: `headroom_core::contention` (shared with the goodput
//! simulator), re-exported under the fake's own path.

pub use headroom_core::contention::*;
