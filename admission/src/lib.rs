//! Headroom's admission core: learned memory-over-time profiles and the policy that decides
//! when each queued inference process may start on a shared GPU (or MIG instance).
//!
//! Sans-IO and deterministic: time is injected as `f64` seconds on any monotonic axis,
//! memory is `u64` bytes, and every answer is a function of (state, observations, now). The
//! sidecar daemon drives it with wall time; the goodput benchmark drives the same code in
//! virtual time. Policy in operator terms: `docs/admission.md`.
//!
//! # API
//! - [`Admission::new`]`(Config, Vec<Device>)`: the managed devices (GPU or MIG UUID,
//!   capacity, reserve).
//! - [`Admission::enqueue`]`(Request, now)`: FIFO; refuses unknown devices, duplicate ids and
//!   declared peaks no device can hold ([`RejectReason`]).
//! - [`Admission::cancel`]`(id)`: leaves the queue.
//! - [`Admission::observe`]`(&Observation, now)`: device used memory (`None` = unknown ⇒ not
//!   admissible), unmanaged usage, each admitted process's usage.
//! - [`Admission::finished`]`(id, Outcome, now)`: a process ended.
//! - [`Admission::decide`]`(now, &dyn ProfileSource) -> Vec<Decision>`: admits what is safe
//!   now, in queue order, each with its device, MPS memory limit and predicted peak.
//! - [`Admission::queue`]: position, planned device, predicted start and [`WaitReason`] of
//!   each waiting request; [`Admission::next_decision_at`]: when to call `decide` again if
//!   nothing else happens; [`Admission::preview`]: the plan without committing it.
//! - [`Admission::adopt`]: take over a process admitted before a restart.
//! - Metrics: [`Admission::reserved`], [`Admission::predicted_peak`],
//!   [`Admission::unmanaged`], [`Admission::budget`], [`Admission::live_used`],
//!   [`Admission::running`].
//! - Learning: [`Run`] records and [`learn`] build a [`Profile`] (serde: `name`,
//!   `duration_s`, `runs`, `points`, `stretch`).
//!
//! # Guarantee
//! A request is admitted only if, in every stretch band not ruled out by observations, the
//! predicted memory of the running processes (each at least its live usage), the newcomer's
//! prediction and the unmanaged usage (live plus growth so far) stay within capacity −
//! reserves at every future moment until all of them have surely ended. Predictions are
//! windows: each process's progress is an interval that widens with co-runners and jitter,
//! and it is charged the envelope's maximum over that interval.
#![forbid(unsafe_code)]

mod answer;
mod config;
mod learn;
mod plan;
mod policy;
mod profile;
mod shape;
mod state;
mod timeline;

pub use answer::{Adopted, Decision, QueueEntry, RejectReason, RunningEntry, WaitReason};
pub use config::{Config, ProfileSource};
pub use learn::{LearnConfig, Outcome, Run, learn};
pub use policy::Admission;
pub use profile::{Profile, ProfileError, Stretch};
pub use shape::Basis;
pub use state::{Device, DeviceReading, Observation, ProcessReading, Request, RequestId};
