//! The daemon's state: the admission core, the store, the requests it tracks, the learned
//! profiles and the metrics; what happens on each API call and each sampling round.
//!
//! Time: the admission core runs on seconds since this daemon started (monotonic); the store
//! keeps unix seconds, so a restarted daemon can place re-adopted processes on its own axis.

use crate::api::{
    AdmissionRequest, AdmissionStatus, DaemonStatus, DeviceStatus, Finished, ProfileSummary,
    Started,
};
use crate::metrics::{Labels, Metrics};
use crate::store::{RunRecord, RunState, Store};
use crate::workload;
use headroom_admission::{
    self as adm, Admission, Basis, Decision, Observation, Profile, RequestId,
};
use headroom_core::log;
use headroom_core::model::Snapshot;
use headroom_core::procfs::ProcFs;
use headroom_core::units::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How long an admission may stay unstarted before it is given back.
const START_GRACE_S: f64 = 120.0;
/// Sampling rounds a vanished, unreported process is given before it counts as ended.
const GONE_ROUNDS: u32 = 3;
/// Runs per workload the profile is learned from.
const HISTORY: usize = 10;
/// Arrivals within this many seconds of the first one are planned together.
const BATCH_S: f64 = 0.02;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A device the daemon manages, and where it sits.
#[derive(Debug, Clone)]
pub struct ManagedDevice {
    /// GPU or MIG UUID.
    pub id: String,
    pub gpu_index: u32,
    pub gpu_uuid: String,
    pub mig_uuid: Option<String>,
    pub capacity: u64,
}

/// Settings that shape admitted processes' environment and the policy.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: adm::Config,
    pub mps_pipe_directory: Option<PathBuf>,
    /// `--manage-mps`: the daemons, one pipe directory per device.
    pub mps_manager: Option<std::sync::Arc<crate::mps::Manager>>,
    pub active_thread_percentage: Option<u8>,
    pub procfs: ProcFs,
    /// Arrivals are planned together once per sampling round; a request admitted within this
    /// many seconds of arriving did not have to wait.
    pub batch_window_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Admitted,
    Running,
    Finished(RunState),
}

#[derive(Debug)]
struct Tracked {
    workload: String,
    declared_peak: Option<u64>,
    enqueued_at: f64,
    admitted_at: Option<f64>,
    phase: Phase,
    device: Option<String>,
    memory_limit: u64,
    pid: Option<u32>,
    pid_start_time: Option<u64>,
    started_at: Option<f64>,
    /// Samples not yet in the store.
    pending_samples: Vec<(f64, u64)>,
    /// Co-runner count as a step function (elapsed, count).
    corunners: Vec<(f64, f64)>,
    missing_rounds: u32,
}

/// Everything behind the daemon's lock.
#[derive(Debug)]
pub struct Daemon {
    admission: Admission,
    store: Store,
    devices: Vec<ManagedDevice>,
    tracked: HashMap<RequestId, Tracked>,
    profiles: BTreeMap<String, Profile>,
    settings: Settings,
    metrics: Metrics,
    epoch: Instant,
    epoch_unix: f64,
    next_id: u64,
    live_used: HashMap<String, Option<u64>>,
    /// When the current batch of arrivals is planned.
    batch_due: Option<f64>,
    /// The MPS control daemon's socket is missing from `--mps-pipe-directory`: nothing is
    /// admitted (an MPS client started now would fail or run without MPS).
    mps_down: bool,
}

/// Why an API call failed.
#[derive(Debug)]
pub enum CallError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unprocessable(String),
    Internal(String),
}

type CallResult<T> = Result<T, CallError>;

fn internal(e: impl std::fmt::Display) -> CallError {
    CallError::Internal(e.to_string())
}

/// Parses the size PyTorch says it tried to allocate ("Tried to allocate 2.60 GiB").
/// Queue reason while the MPS control daemon is missing.
const MPS_UNAVAILABLE: &str = "mps_unavailable";

fn attempted_allocation(msg: &str) -> Option<u64> {
    let rest = msg.split("Tried to allocate ").nth(1)?;
    let mut words = rest.split_whitespace();
    let num = words.next()?;
    let unit = words.next()?.trim_end_matches(['.', ',']);
    headroom_core::units::parse_size(&format!("{num}{unit}")).ok()
}

impl Daemon {
    /// Builds the daemon state; re-adopts runs the store says are still open.
    pub fn new(
        store: Store,
        devices: Vec<ManagedDevice>,
        settings: Settings,
    ) -> Result<Self, crate::store::StoreError> {
        let adm_devices = devices
            .iter()
            .map(|d| adm::Device {
                id: d.id.clone(),
                capacity: d.capacity,
                reserve: 0,
            })
            .collect();
        let profiles: BTreeMap<String, Profile> =
            store.profiles::<Profile>()?.into_iter().collect();
        let epoch_unix = unix_now();
        let max_id = store
            .all_runs()?
            .iter()
            .filter_map(|r| r.id.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let next_id = max_id.max((epoch_unix * 1000.0) as u64) + 1;
        let mut d = Self {
            admission: Admission::new(settings.config.clone(), adm_devices),
            store,
            devices,
            tracked: HashMap::new(),
            profiles,
            settings,
            metrics: Metrics::new(),
            epoch: Instant::now(),
            epoch_unix,
            next_id,
            live_used: HashMap::new(),
            batch_due: None,
            mps_down: false,
        };
        d.readopt()?;
        d.refresh_profile_metrics();
        Ok(d)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn axis_from_unix(&self, u: f64) -> f64 {
        u - self.epoch_unix
    }

    /// Takes over runs left open by a previous daemon: a running process that is still the
    /// same process (pid and start time) is re-adopted with its original reservation;
    /// anything else is closed as interrupted. Nothing is admitted before this is done.
    fn readopt(&mut self) -> Result<(), crate::store::StoreError> {
        let now = self.now();
        for r in self.store.open_runs()? {
            let alive = r.pid.is_some_and(|pid| {
                let st = self.settings.procfs.start_time(pid);
                st.is_some() && (r.pid_start_time.is_none() || st == r.pid_start_time)
            });
            let id = r.id.parse::<u64>().ok().map(RequestId);
            let basis: Option<Basis> = r
                .basis
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok());
            match (alive, id, basis) {
                (true, Some(id), Some(basis)) if r.state == RunState::Running => {
                    let started = self.axis_from_unix(r.started_at.unwrap_or(r.admitted_at));
                    let adopted = adm::Adopted {
                        id,
                        device: r.device.clone(),
                        workload: r.workload.clone(),
                        started_at: started,
                        basis,
                        memory_limit: r.memory_limit_bytes,
                    };
                    if let Err(e) = self.admission.adopt(adopted, now) {
                        log::warn("cannot re-adopt run", &[("id", &r.id), ("error", &e)]);
                        self.store.finish(
                            &r.id,
                            RunState::Interrupted,
                            None,
                            None,
                            None,
                            unix_now(),
                        )?;
                        continue;
                    }
                    log::info(
                        "re-adopted running process",
                        &[
                            ("id", &r.id),
                            ("pid", &r.pid.unwrap_or(0)),
                            ("workload", &r.workload),
                        ],
                    );
                    self.tracked.insert(
                        id,
                        Tracked {
                            workload: r.workload.clone(),
                            declared_peak: r.declared_peak_bytes,
                            enqueued_at: self.axis_from_unix(r.admitted_at),
                            admitted_at: Some(self.axis_from_unix(r.admitted_at)),
                            phase: Phase::Running,
                            device: Some(r.device.clone()),
                            memory_limit: r.memory_limit_bytes,
                            pid: r.pid,
                            pid_start_time: r.pid_start_time,
                            started_at: Some(started),
                            pending_samples: Vec::new(),
                            corunners: Vec::new(),
                            missing_rounds: 0,
                        },
                    );
                }
                _ => {
                    log::info(
                        "closing run left open by a previous daemon",
                        &[("id", &r.id), ("workload", &r.workload)],
                    );
                    self.store.finish(
                        &r.id,
                        RunState::Interrupted,
                        None,
                        None,
                        None,
                        unix_now(),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn resolve_device(&self, name: &str) -> Option<String> {
        if let Ok(index) = name.parse::<u32>() {
            return self
                .devices
                .iter()
                .find(|d| d.gpu_index == index && d.mig_uuid.is_none())
                .map(|d| d.id.clone());
        }
        self.devices
            .iter()
            .find(|d| d.id == name)
            .map(|d| d.id.clone())
    }

    fn env_for(
        &self,
        id: RequestId,
        device: &str,
        limit: u64,
        workload: &str,
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("CUDA_VISIBLE_DEVICES".into(), device.to_string());
        // The child sees its one device as ordinal 0; MPS reads M as MiB.
        env.insert(
            "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT".into(),
            format!("0={}M", (limit >> 20).max(1)),
        );
        env.insert("HEADROOM_WORKLOAD".into(), workload.to_string());
        env.insert("HEADROOM_ADMISSION_ID".into(), id.to_string());
        let managed = self
            .settings
            .mps_manager
            .as_ref()
            .and_then(|m| m.pipe_for(device));
        if let Some(p) = managed.or(self.settings.mps_pipe_directory.as_deref()) {
            env.insert("CUDA_MPS_PIPE_DIRECTORY".into(), p.display().to_string());
        }
        if let Some(p) = self.settings.active_thread_percentage {
            env.insert("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE".into(), p.to_string());
        }
        env
    }

    /// `POST /v1/admissions`.
    pub fn enqueue(&mut self, req: AdmissionRequest) -> CallResult<AdmissionStatus> {
        if !workload::valid(&req.workload) {
            self.metrics.rejected("bad_workload_name");
            return Err(CallError::BadRequest(format!(
                "workload name {:?} must be 1-128 characters of A-Z a-z 0-9 . _ -",
                req.workload
            )));
        }
        let device = match &req.device {
            Some(name) => Some(self.resolve_device(name).ok_or_else(|| {
                self.metrics.rejected("unknown_device");
                CallError::NotFound(format!(
                    "unknown device {name:?}: managed devices are {}",
                    self.devices
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
            None => None,
        };
        if req.peak_bytes == Some(0) {
            self.metrics.rejected("invalid");
            return Err(CallError::BadRequest("peak_bytes must be positive".into()));
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let now = self.now();
        let request = adm::Request {
            id,
            workload: req.workload.clone(),
            declared_peak: req.peak_bytes,
            device: device.clone(),
        };
        if let Err(reason) = self.admission.enqueue(request, now) {
            let label = match &reason {
                adm::RejectReason::UnknownDevice(_) => "unknown_device",
                adm::RejectReason::DuplicateId(_) => "duplicate",
                adm::RejectReason::TooLarge { .. } => "too_large",
                adm::RejectReason::Invalid(_) => "invalid",
            };
            self.metrics.rejected(label);
            return Err(match reason {
                adm::RejectReason::TooLarge {
                    peak,
                    largest_budget,
                } => CallError::Unprocessable(format!(
                    "declared peak {} is larger than any managed device can hold (largest budget {})",
                    Bytes(peak),
                    Bytes(largest_budget)
                )),
                other => CallError::BadRequest(other.to_string()),
            });
        }
        self.tracked.insert(
            id,
            Tracked {
                workload: req.workload,
                declared_peak: req.peak_bytes,
                enqueued_at: now,
                admitted_at: None,
                phase: Phase::Queued,
                device,
                memory_limit: 0,
                pid: None,
                pid_start_time: None,
                started_at: None,
                pending_samples: Vec::new(),
                corunners: Vec::new(),
                missing_rounds: 0,
            },
        );
        // No decision here: arrivals within BATCH_S of each other are planned together, so
        // requests that come in at once can be staggered against each other (deciding each
        // on arrival admits the first ones blindly and lets their peaks coincide).
        self.batch_due.get_or_insert(now + BATCH_S);
        self.status(id)
    }

    /// Seconds until the daemon should decide again without any other event: a batch of
    /// arrivals to plan, or a planned start (a stagger hold) coming due.
    pub fn wake_in(&self) -> Option<f64> {
        let now = self.now();
        [self.batch_due, self.admission.next_decision_at()]
            .into_iter()
            .flatten()
            .map(|t| (t - now).max(0.0))
            .min_by(f64::total_cmp)
    }

    /// Decides if a batch or a planned start is due.
    pub fn tick(&mut self) -> CallResult<()> {
        if self.wake_in().is_some_and(|s| s <= 0.0) {
            self.decide()?;
            self.refresh_device_metrics();
        }
        Ok(())
    }

    /// Runs the policy and records its admissions.
    pub fn decide(&mut self) -> CallResult<()> {
        let now = self.now();
        self.batch_due = None;
        if self.mps_down {
            return Ok(());
        }
        let decisions = self.admission.decide(now, &self.profiles);
        for Decision::Admit {
            id,
            device,
            memory_limit,
            predicted_peak,
        } in decisions
        {
            let Some(t) = self.tracked.get_mut(&id) else {
                continue;
            };
            t.phase = Phase::Admitted;
            t.admitted_at = Some(now);
            t.device = Some(device.clone());
            t.memory_limit = memory_limit;
            let waited = now - t.enqueued_at;
            if waited > self.settings.batch_window_s {
                self.metrics.waited(&device);
            }
            let basis = self
                .admission
                .running()
                .into_iter()
                .find(|r| r.id == id)
                .map(|r| r.basis);
            let record = RunRecord {
                id: id.to_string(),
                workload: t.workload.clone(),
                device: device.clone(),
                state: RunState::Admitted,
                admitted_at: self.epoch_unix + now,
                started_at: None,
                ended_at: None,
                pid: None,
                pid_start_time: None,
                reserved_bytes: predicted_peak,
                memory_limit_bytes: memory_limit,
                declared_peak_bytes: t.declared_peak,
                exit_code: None,
                oom_message: None,
                mean_co_runners: None,
                basis: basis.and_then(|b| serde_json::to_string(&b).ok()),
                corunners: None,
            };
            self.store.insert_run(&record).map_err(internal)?;
            self.metrics.admitted(&device, waited);
            log::info(
                "admitted",
                &[
                    ("id", &id),
                    ("workload", &record.workload),
                    ("device", &device),
                    ("limit", &Bytes(memory_limit)),
                    ("predicted_peak", &Bytes(predicted_peak)),
                    ("waited_s", &format!("{waited:.1}")),
                ],
            );
        }
        Ok(())
    }

    fn tracked(&self, id: RequestId) -> CallResult<&Tracked> {
        self.tracked
            .get(&id)
            .ok_or_else(|| CallError::NotFound(format!("no admission {id}")))
    }

    pub fn parse_id(s: &str) -> CallResult<RequestId> {
        s.parse::<u64>()
            .map(RequestId)
            .map_err(|_| CallError::NotFound(format!("no admission {s:?}")))
    }

    /// `GET /v1/admissions/{id}`.
    pub fn status(&self, id: RequestId) -> CallResult<AdmissionStatus> {
        let t = self.tracked(id)?;
        let sid = id.to_string();
        Ok(match t.phase {
            Phase::Queued => {
                // The last decision's plan: polling must not re-plan the whole queue.
                let now = self.now();
                let entry = self.admission.queue().into_iter().find(|e| e.id == id);
                AdmissionStatus::Queued {
                    id: sid,
                    position: entry.as_ref().map_or(1, |e| e.position + 1),
                    predicted_start_in_s: entry
                        .as_ref()
                        .and_then(|e| e.predicted_start)
                        .map(|s| (s - now).max(0.0)),
                    reason: if self.mps_down {
                        MPS_UNAVAILABLE.to_string()
                    } else {
                        entry.map_or_else(
                            || crate::api::NOT_PLANNED_YET.to_string(),
                            // The API's snake_case name (`device_memory_unknown`).
                            |e| {
                                serde_json::to_value(e.reason)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_else(|| format!("{:?}", e.reason).to_lowercase())
                            },
                        )
                    },
                }
            }
            Phase::Admitted => {
                let device = t.device.clone().unwrap_or_default();
                AdmissionStatus::Admitted {
                    env: self.env_for(id, &device, t.memory_limit, &t.workload),
                    id: sid,
                    device,
                    memory_limit_bytes: t.memory_limit,
                }
            }
            Phase::Running => AdmissionStatus::Running {
                id: sid,
                device: t.device.clone().unwrap_or_default(),
                pid: t.pid.unwrap_or(0),
            },
            Phase::Finished(s) => AdmissionStatus::Finished {
                id: sid,
                outcome: s.as_str().to_string(),
            },
        })
    }

    /// `DELETE /v1/admissions/{id}`.
    pub fn cancel(&mut self, id: RequestId) -> CallResult<()> {
        let phase = self.tracked(id)?.phase;
        match phase {
            Phase::Queued => {
                self.admission.cancel(id);
                self.tracked.remove(&id);
            }
            Phase::Admitted => self.end(id, RunState::Interrupted, None, None)?,
            Phase::Running => {
                return Err(CallError::Conflict(format!(
                    "admission {id} is running; end the process instead"
                )));
            }
            Phase::Finished(_) => {}
        }
        self.decide()
    }

    /// `POST /v1/admissions/{id}/started`.
    pub fn started(&mut self, id: RequestId, s: Started) -> CallResult<()> {
        let now = self.now();
        let t = self
            .tracked
            .get_mut(&id)
            .ok_or_else(|| CallError::NotFound(format!("no admission {id}")))?;
        if t.phase != Phase::Admitted {
            return Err(CallError::Conflict(format!(
                "admission {id} is not waiting for its process to start"
            )));
        }
        t.phase = Phase::Running;
        t.pid = Some(s.pid);
        t.pid_start_time = s.start_time;
        t.started_at = Some(now);
        self.store
            .set_started(&id.to_string(), s.pid, s.start_time, self.epoch_unix + now)
            .map_err(internal)
    }

    /// `POST /v1/admissions/{id}/finished`.
    pub fn finished(&mut self, id: RequestId, f: Finished) -> CallResult<()> {
        let state = if f.oom {
            RunState::Oom
        } else if f.exit_code == Some(0) {
            RunState::Completed
        } else {
            RunState::Failed
        };
        self.end(id, state, f.exit_code, f.oom_message)?;
        self.decide()
    }

    /// Closes a run: store, admission core, metrics, and learning.
    fn end(
        &mut self,
        id: RequestId,
        state: RunState,
        exit_code: Option<i32>,
        oom_message: Option<String>,
    ) -> CallResult<()> {
        let now = self.now();
        let Some(t) = self.tracked.get_mut(&id) else {
            return Err(CallError::NotFound(format!("no admission {id}")));
        };
        if let Phase::Finished(_) = t.phase {
            return Ok(());
        }
        t.phase = Phase::Finished(state);
        let samples = std::mem::take(&mut t.pending_samples);
        let corunners = t.corunners.clone();
        let workload = t.workload.clone();
        let device = t.device.clone();
        let duration = t.started_at.map(|s| now - s);
        let sid = id.to_string();
        self.store
            .append_samples(&sid, &samples)
            .map_err(internal)?;
        let run_for_mean = adm::Run {
            workload: workload.clone(),
            samples: Vec::new(),
            duration_s: duration.unwrap_or(0.0),
            corunners: corunners.clone(),
            outcome: adm::Outcome::Completed,
            oom_attempted: None,
        };
        let mean = duration.map(|_| run_for_mean.mean_corunners());
        self.store
            .finish_with_corunners(
                &sid,
                state,
                exit_code,
                oom_message.as_deref(),
                mean,
                serde_json::to_string(&corunners).ok().as_deref(),
                self.epoch_unix + now,
            )
            .map_err(internal)?;
        let outcome = match state {
            RunState::Completed => adm::Outcome::Completed,
            RunState::Oom => adm::Outcome::Oom,
            RunState::Failed => adm::Outcome::Failed,
            _ => adm::Outcome::Interrupted,
        };
        self.admission.finished(id, outcome, now);
        if state == RunState::Oom {
            if let Some(dev) = device
                .as_deref()
                .and_then(|d| self.devices.iter().find(|m| m.id == d))
            {
                let mut labels: Labels = vec![
                    ("gpu".into(), dev.gpu_index.to_string()),
                    ("gpu_uuid".into(), dev.gpu_uuid.clone()),
                ];
                if let Some(m) = &dev.mig_uuid {
                    labels.push(("mig_uuid".into(), m.clone()));
                }
                labels.push(("workload".into(), workload.clone()));
                labels.push(("source".into(), "launcher".into()));
                self.metrics.oom(labels);
            }
            log::warn(
                "launched process ran out of memory",
                &[
                    ("id", &id),
                    ("workload", &workload),
                    ("message", &oom_message.clone().unwrap_or_default()),
                ],
            );
        }
        if matches!(
            state,
            RunState::Completed | RunState::Oom | RunState::Failed
        ) && duration.is_some()
        {
            self.learn(&workload).map_err(internal)?;
        }
        log::info(
            "finished",
            &[
                ("id", &id),
                ("workload", &workload),
                ("outcome", &state.as_str()),
            ],
        );
        Ok(())
    }

    /// Re-learns `workload`'s profile from its recent runs.
    fn learn(&mut self, workload: &str) -> Result<(), crate::store::StoreError> {
        let mut runs = Vec::new();
        for r in self.store.recent_runs(workload, HISTORY)? {
            let (Some(start), Some(end)) = (r.started_at, r.ended_at) else {
                continue;
            };
            let outcome = match r.state {
                RunState::Completed => adm::Outcome::Completed,
                RunState::Oom => adm::Outcome::Oom,
                _ => adm::Outcome::Failed,
            };
            runs.push(adm::Run {
                workload: workload.to_string(),
                samples: self.store.samples(&r.id)?,
                duration_s: end - start,
                corunners: r
                    .corunners
                    .as_deref()
                    .and_then(|c| serde_json::from_str(c).ok())
                    .unwrap_or_default(),
                outcome,
                oom_attempted: r.oom_message.as_deref().and_then(attempted_allocation),
            });
        }
        runs.reverse();
        if let Some(p) = adm::learn(workload, &runs, &adm::LearnConfig::default()) {
            log::info(
                "profile learned",
                &[
                    ("workload", &workload),
                    ("runs", &p.runs()),
                    ("peak", &Bytes(p.peak())),
                    ("duration_s", &format!("{:.0}", p.duration_s())),
                ],
            );
            self.store.put_profile(workload, &p, unix_now())?;
            self.profiles.insert(workload.to_string(), p);
            self.refresh_profile_metrics();
        }
        Ok(())
    }

    fn refresh_profile_metrics(&self) {
        self.metrics.profiles_known(self.profiles.len());
        for (name, p) in &self.profiles {
            self.metrics.profile(name, p.peak(), p.runs());
        }
    }

    /// Checks that the MPS control daemon answers on `control` in `--mps-pipe-directory`, or
    /// (`--manage-mps`) that every managed daemon does, starting again those that stopped;
    /// admission pauses while one does not, with one log line per change.
    fn check_mps(&mut self) {
        let up = match (
            &self.settings.mps_manager,
            &self.settings.mps_pipe_directory,
        ) {
            (Some(m), _) => m.keep_up(),
            (None, Some(dir)) => crate::mps::control_up(dir),
            (None, None) => return,
        };
        if up != self.mps_down {
            return;
        }
        // Only on a change: name what was checked.
        let what = match &self.settings.mps_pipe_directory {
            Some(dir) if self.settings.mps_manager.is_none() => {
                dir.join("control").display().to_string()
            }
            _ => "managed MPS control daemons".to_string(),
        };
        self.mps_down = !up;
        if up {
            log::info(
                "MPS control daemon is back: admission resumed",
                &[("socket", &what)],
            );
        } else {
            log::warn(
                "MPS control daemon not running (no control socket): admission paused",
                &[("socket", &what)],
            );
        }
    }

    /// Whether admitted processes still run (or are about to start) on `device`.
    pub fn busy(&self, device: &str) -> bool {
        self.admission.running().iter().any(|r| r.device == device)
    }

    /// One sampling round: live memory, per-process samples, co-runners, vanished processes,
    /// stale admissions, then a decision.
    pub fn observe(&mut self, snap: &Snapshot) -> CallResult<()> {
        self.check_mps();
        let now = self.now();
        let mut obs = Observation::default();
        // pid → (device id, bytes) for processes on managed devices
        let mut on_device: HashMap<u32, (String, u64)> = HashMap::new();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for dev in &self.devices {
            let gpu = snap.gpu(&dev.gpu_uuid);
            let memory = gpu.and_then(|g| match &dev.mig_uuid {
                Some(m) => g.mig(m).and_then(|i| i.memory),
                None => g.memory,
            });
            let used = memory.map(|m| m.used);
            self.live_used.insert(dev.id.clone(), used);
            obs.devices.push(adm::DeviceReading {
                device: dev.id.clone(),
                used,
                unmanaged: None,
            });
            if let Some(g) = gpu.filter(|g| g.processes_complete) {
                for p in g.processes.iter().filter(|p| p.mig_uuid == dev.mig_uuid) {
                    if p.name.as_deref() == Some("nvidia-cuda-mps-server") {
                        continue;
                    }
                    *counts.entry(dev.id.clone()).or_default() += 1;
                    if let Some(b) = p.used_memory {
                        on_device.insert(p.pid, (dev.id.clone(), b));
                    }
                }
            }
        }
        let mut vanished = Vec::new();
        let mut stale = Vec::new();
        for (id, t) in &mut self.tracked {
            match t.phase {
                Phase::Running => {
                    let (Some(pid), Some(start)) = (t.pid, t.started_at) else {
                        continue;
                    };
                    let elapsed = now - start;
                    let dev = t.device.clone().unwrap_or_default();
                    let k = counts.get(&dev).copied().unwrap_or(0).saturating_sub(1) as f64;
                    if t.corunners.last().is_none_or(|c| c.1 != k) {
                        t.corunners.push((elapsed, k));
                    }
                    match on_device.get(&pid) {
                        Some((_, bytes)) => {
                            t.pending_samples.push((elapsed, *bytes));
                            obs.processes.push(adm::ProcessReading {
                                id: *id,
                                used: *bytes,
                            });
                            t.missing_rounds = 0;
                        }
                        None => {
                            let alive = self
                                .settings
                                .procfs
                                .start_time(pid)
                                .is_some_and(|s| t.pid_start_time.is_none_or(|x| x == s));
                            if alive {
                                t.missing_rounds = 0;
                            } else {
                                t.missing_rounds += 1;
                                if t.missing_rounds >= GONE_ROUNDS {
                                    vanished.push(*id);
                                }
                            }
                        }
                    }
                }
                Phase::Admitted if t.admitted_at.is_some_and(|a| now - a > START_GRACE_S) => {
                    stale.push(*id)
                }
                _ => {}
            }
        }
        self.admission.observe(&obs, now);
        for id in vanished {
            log::warn(
                "admitted process vanished without a report; closing its run",
                &[("id", &id)],
            );
            self.end(id, RunState::Interrupted, None, None)?;
        }
        for id in stale {
            log::warn(
                "admitted process never started; giving its admission back",
                &[("id", &id)],
            );
            self.end(id, RunState::Interrupted, None, None)?;
        }
        // Flush samples now and then so a crash loses little.
        let ids: Vec<RequestId> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.pending_samples.len() >= 5)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = self.tracked.get_mut(&id) {
                let batch = std::mem::take(&mut t.pending_samples);
                self.store
                    .append_samples(&id.to_string(), &batch)
                    .map_err(internal)?;
            }
        }
        self.tracked.retain(|_, t| {
            !matches!(t.phase, Phase::Finished(_))
                || t.admitted_at.is_some_and(|a| now - a < 3600.0)
        });
        self.decide()?;
        self.refresh_device_metrics();
        Ok(())
    }

    fn refresh_device_metrics(&self) {
        let queue = self.admission.queue();
        let running = self.admission.running();
        self.metrics
            .unplanned(queue.iter().filter(|q| q.device.is_none()).count());
        for d in &self.devices {
            let queued = queue
                .iter()
                .filter(|q| q.device.as_deref() == Some(d.id.as_str()))
                .count();
            let run = running.iter().filter(|r| r.device == d.id).count();
            self.metrics.device(
                &d.id,
                &crate::metrics::DeviceGauges {
                    capacity: d.capacity,
                    used: self.live_used.get(&d.id).copied().flatten(),
                    reserved: self.admission.reserved(&d.id),
                    predicted_peak: self.admission.predicted_peak(&d.id),
                    queued,
                    running: run,
                },
            );
        }
    }

    /// `GET /v1/status`.
    pub fn daemon_status(&self) -> DaemonStatus {
        DaemonStatus {
            devices: self
                .devices
                .iter()
                .map(|d| DeviceStatus {
                    device: d.id.clone(),
                    capacity_bytes: d.capacity,
                    used_bytes: self.live_used.get(&d.id).copied().flatten(),
                    reserved_bytes: self.admission.reserved(&d.id).unwrap_or(0),
                    predicted_peak_bytes: self.admission.predicted_peak(&d.id).unwrap_or(0),
                })
                .collect(),
            queued: self
                .tracked
                .values()
                .filter(|t| t.phase == Phase::Queued)
                .count(),
            running: self
                .tracked
                .values()
                .filter(|t| matches!(t.phase, Phase::Admitted | Phase::Running))
                .count(),
        }
    }

    /// `GET /v1/profiles`.
    pub fn profile_summaries(&self) -> Vec<ProfileSummary> {
        self.profiles
            .values()
            .map(|p| ProfileSummary {
                name: p.name().to_string(),
                runs: p.runs(),
                peak_bytes: p.peak(),
                steady_bytes: p.steady(),
                duration_s: p.duration_s(),
            })
            .collect()
    }

    /// `GET /v1/profiles/{name}`.
    pub fn profile(&self, name: &str) -> CallResult<&Profile> {
        self.profiles
            .get(name)
            .ok_or_else(|| CallError::NotFound(format!("no profile for workload {name:?}")))
    }

    /// `PUT /v1/profiles/{name}`.
    pub fn put_profile(&mut self, name: &str, p: Profile) -> CallResult<()> {
        if p.name() != name {
            return Err(CallError::BadRequest(format!(
                "profile is named {:?}, not {name:?}",
                p.name()
            )));
        }
        if !workload::valid(name) {
            return Err(CallError::BadRequest(format!(
                "workload name {name:?} is not valid"
            )));
        }
        self.store
            .put_profile(name, &p, unix_now())
            .map_err(internal)?;
        self.profiles.insert(name.to_string(), p);
        self.refresh_profile_metrics();
        self.decide()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pytorch_attempted_allocation() {
        assert_eq!(
            attempted_allocation(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.60 GiB. GPU 0 has"
            ),
            Some((2.6 * (1u64 << 30) as f64).round() as u64)
        );
        assert_eq!(
            attempted_allocation("Tried to allocate 80.00 MiB."),
            Some(80 << 20)
        );
        assert_eq!(attempted_allocation("no size here"), None);
    }
}
