//! The MIG profile tables and placement solver the fake GPU serves (scenario
//! `mig_profiles = "h100-80gb"`). They live in `headroom_core::mig_profiles` (the sidecar's
//! planner uses the same production data); re-exported here so the fake, the fake NVML and the
//! simulator keep their `headroom_fake::mig_profiles` paths.

pub use headroom_core::mig_profiles::*;
