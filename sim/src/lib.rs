//! Headroom's goodput simulator: a discrete-event simulation in virtual time of jobs
//! arriving at one GPU and the policies that decide when (and where) each starts.
//!
//! - [`scenario`]: the scenario files (GPU, workloads' true timelines, contention, noise,
//!   arrivals) and the jobs a seed draws from them.
//! - [`engine`]: the event loop, contention, OOM semantics.
//! - [`policy`]: all at once, fixed stagger, MIG, sequential, Headroom (the sidecar's own
//!   admission core, `headroom-admission`, not a copy of it) and the oracle.
//! - [`compare`]: every policy on identical jobs, summarised.
//! - [`predict`]: one device's makespan for the planner (`headroom-sidecar plan`).
//!
//! Used by `headroom-bench admission` (the goodput benchmark, `docs/benchmarks.md`).
#![forbid(unsafe_code)]

pub mod compare;
pub mod engine;
pub mod policy;
pub mod predict;
pub mod rng;
pub mod scenario;

pub use compare::{POLICIES, PolicyReport, Report, compare};
pub use scenario::{Scenario, ScenarioError};
