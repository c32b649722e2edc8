//! The policies compared: [`simple`] (all at once, fixed stagger, sequential, a fixed
//! schedule), [`mig`] (one job per MIG instance), [`headroom`] (the sidecar's admission
//! core) and [`oracle`] (true profiles, searched start times).

pub mod headroom;
pub mod mig;
pub mod oracle;
pub mod simple;
