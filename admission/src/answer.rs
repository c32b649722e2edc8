//! What the policy answers: admissions ([`Decision`]), the queue as reported
//! ([`QueueEntry`], [`WaitReason`]), refusals ([`RejectReason`]), the running set
//! ([`RunningEntry`]) and processes taken over after a restart ([`Adopted`]).

use crate::shape::Basis;
use crate::state::RequestId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What `decide` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Start it now on `device`, with `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` = `memory_limit`.
    Admit {
        id: RequestId,
        device: String,
        memory_limit: u64,
        predicted_peak: u64,
    },
}

/// Why a queued request is not running yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Not planned yet (enqueued after the last `decide`).
    Pending,
    /// Fits now: the next `decide` admits it.
    Ready,
    /// The predicted memory does not fit before `predicted_start`.
    Memory,
    /// Fits, but held until `predicted_start` so that its peak does not coincide with
    /// others' and the requests behind it can start sooner.
    Stagger,
    /// Fits now, but starting it ahead of earlier requests would delay one of them.
    BehindEarlier,
    /// No live memory reading for any device it may use.
    DeviceMemoryUnknown,
    /// No profile and no declared peak: waits for room for the largest known profile (or
    /// an idle device).
    UnknownWorkload,
    /// Its peak exceeds every eligible device's capacity − reserve.
    TooLarge,
    /// Deeper in the queue than `plan_depth`: planned once it moves up.
    Queued,
}

/// One queued request as reported by [`crate::Admission::queue`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: RequestId,
    pub workload: String,
    /// 0 for the head of the queue.
    pub position: usize,
    pub arrived_at: f64,
    /// The device it is planned on.
    pub device: Option<String>,
    pub predicted_start: Option<f64>,
    pub reason: WaitReason,
}

/// Why `enqueue` refused a request (nothing entered the queue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    UnknownDevice(String),
    DuplicateId(RequestId),
    /// The declared peak exceeds every eligible device's capacity − reserve.
    TooLarge {
        peak: u64,
        largest_budget: u64,
    },
    Invalid(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDevice(d) => write!(f, "unknown device {d}"),
            Self::DuplicateId(id) => write!(f, "request {id} already exists"),
            Self::TooLarge {
                peak,
                largest_budget,
            } => write!(
                f,
                "declared peak {peak} B exceeds the largest device budget {largest_budget} B"
            ),
            Self::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl std::error::Error for RejectReason {}

/// An admitted process as reported by [`crate::Admission::running`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningEntry {
    pub id: RequestId,
    pub device: String,
    pub workload: String,
    pub started_at: f64,
    pub basis: Basis,
    pub predicted_peak: u64,
    pub memory_limit: u64,
    pub live: u64,
}

/// A process to take over after a restart (see [`crate::Admission::adopt`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adopted {
    pub id: RequestId,
    pub device: String,
    pub workload: String,
    pub started_at: f64,
    pub basis: Basis,
    pub memory_limit: u64,
}
