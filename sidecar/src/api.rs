//! The admission API's wire types (JSON over HTTP/1.1 on the daemon's unix socket), shared by
//! the daemon and the `run` client. Routes (`docs/api.md` has examples):
//!
//! - `POST /v1/admissions` — [`AdmissionRequest`] → 201 [`AdmissionStatus`]
//! - `GET /v1/admissions/{id}` — → 200 [`AdmissionStatus`]
//! - `DELETE /v1/admissions/{id}` — leave the queue (or give back an unused admission) → 204
//! - `POST /v1/admissions/{id}/started` — [`Started`] → 204
//! - `POST /v1/admissions/{id}/finished` — [`Finished`] → 204
//! - `GET /v1/profiles` — → 200 `[ProfileSummary]`
//! - `GET /v1/profiles/{name}` — → 200 profile (TOML-compatible JSON)
//! - `PUT /v1/profiles/{name}` — profile → 204
//! - `GET /v1/status` — → 200 [`DaemonStatus`]
//!
//! Errors are a status code ≥ 400 with [`ApiError`] as body.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The queue `reason` of a request the daemon has no plan entry for (like `pending`, which
/// the admission core gives a request enqueued after its last decision: not planned yet).
pub const NOT_PLANNED_YET: &str = "not planned yet";

/// Largest request body the daemon reads.
pub const MAX_BODY: usize = 256 * 1024;

/// Ask to start a process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdmissionRequest {
    /// Workload name; profiles are learned per workload.
    pub workload: String,
    /// Declared peak memory in bytes, if the operator knows it.
    #[serde(default)]
    pub peak_bytes: Option<u64>,
    /// Restrict to one device (GPU or MIG UUID, or GPU index).
    #[serde(default)]
    pub device: Option<String>,
    /// The command, for the record (never executed by the daemon).
    #[serde(default)]
    pub command: Vec<String>,
}

/// Where a request stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AdmissionStatus {
    Queued {
        id: String,
        /// 1-based position among requests for the same devices.
        position: usize,
        /// Predicted seconds until start, when a start can be predicted.
        predicted_start_in_s: Option<f64>,
        /// Why it waits.
        reason: String,
    },
    Admitted {
        id: String,
        /// GPU or MIG UUID the process must use.
        device: String,
        /// The MPS memory limit in bytes.
        memory_limit_bytes: u64,
        /// Environment to set on the child.
        env: BTreeMap<String, String>,
    },
    /// Admitted and reported started; or finished.
    Running {
        id: String,
        device: String,
        pid: u32,
    },
    Finished {
        id: String,
        outcome: String,
    },
}

/// The admitted process started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Started {
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22), to tell it from
    /// a later process with the same pid.
    #[serde(default)]
    pub start_time: Option<u64>,
}

/// The admitted process ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Finished {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The launcher saw a CUDA/PyTorch/JAX out-of-memory message on stderr.
    pub oom: bool,
    #[serde(default)]
    pub oom_message: Option<String>,
}

/// A learned profile in short.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileSummary {
    pub name: String,
    pub runs: u32,
    pub peak_bytes: u64,
    pub steady_bytes: u64,
    pub duration_s: f64,
}

/// What the daemon manages and holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaemonStatus {
    pub devices: Vec<DeviceStatus>,
    pub queued: usize,
    pub running: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceStatus {
    pub device: String,
    pub capacity_bytes: u64,
    pub used_bytes: Option<u64>,
    pub reserved_bytes: u64,
    pub predicted_peak_bytes: u64,
}

/// Error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiError {
    pub error: String,
}
