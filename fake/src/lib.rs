//! Headroom's fake GPU, minus the FFI: the scenario model that describes fake GPUs (MIG
//! layout from real profile tables, processes with memory timelines, injected NVML errors,
//! Xid events), the virtual clock, the live job registry shared between processes through a
//! state directory, and the `fake-gpu-job` helper that plays an inference process.
//!
//! The fake NVML library (`headroom-fake-nvml`) answers NVML calls from this crate's model;
//! `fake-gpu-job` registers itself here so that the fake NVML lists it with its memory.
//! The format of scenario files is documented in `docs/scenarios.md`.
#![forbid(unsafe_code)]

pub mod clock;
pub mod contention;
pub mod device;
pub mod faults;
pub mod job;
pub mod mig_profiles;
pub mod nvml_error;
pub mod scenario;
pub mod state;
pub mod timeline;
pub mod world;
pub mod xid;

pub use clock::Clock;
pub use device::{DeviceRef, RunningProcess};
pub use scenario::{Scenario, ScenarioError};
pub use state::{LiveJob, StateDir};
pub use world::{World, WorldError};

/// Environment variable naming the scenario file (required by the fake NVML and the job).
pub const ENV_SCENARIO: &str = "HEADROOM_FAKE_SCENARIO";
/// Environment variable naming the state directory shared by jobs and fake NVML readers.
pub const ENV_STATE_DIR: &str = "HEADROOM_FAKE_STATE_DIR";
/// Environment variable that freezes the virtual clock at the given virtual second.
pub const ENV_FREEZE_AT: &str = "HEADROOM_FAKE_FREEZE_AT";
