//! Maps HTTP requests to daemon calls: the admission API on the unix socket, and metrics and
//! health on TCP (the TCP side never exposes the API). Route list: `crate::api`; decoding a
//! request into a call: [`decode`].

mod decode;

use crate::daemon::{CallError, Daemon};
use crate::http::{Handler, Reply};
use decode::{Call, decode};
use hyper::{Method, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the sampler thread is told between its rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A decision may be due sooner than the sampler planned (a request arrived): look again.
    Wake,
    /// The daemon is shutting down.
    Stop,
}

/// The daemon behind its lock, plus readiness and the sampler's wake-up line.
#[derive(Debug)]
pub struct Shared {
    pub daemon: Mutex<Daemon>,
    pub ready: AtomicBool,
    /// Room for one signal: wake-ups coalesce while the sampler is busy.
    pub sampler: std::sync::mpsc::SyncSender<Signal>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Daemon> {
        self.daemon.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the sampler to recompute when to decide (it sleeps until the next sampling
    /// round otherwise, which would delay an arrival's admission by up to `--interval`).
    pub fn wake_sampler(&self) {
        // Full: a wake-up is already pending. Disconnected: the sampler has stopped.
        let _ = self.sampler.try_send(Signal::Wake);
    }
}

fn error_reply(e: CallError) -> Reply {
    match e {
        CallError::BadRequest(m) => Reply::error(StatusCode::BAD_REQUEST, &m),
        CallError::NotFound(m) => Reply::error(StatusCode::NOT_FOUND, &m),
        CallError::Conflict(m) => Reply::error(StatusCode::CONFLICT, &m),
        CallError::Unprocessable(m) => Reply::error(StatusCode::UNPROCESSABLE_ENTITY, &m),
        CallError::Internal(m) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &m),
    }
}

fn done(r: Result<(), CallError>) -> Reply {
    match r {
        Ok(()) => Reply::empty(StatusCode::NO_CONTENT),
        Err(e) => error_reply(e),
    }
}

/// The admission API.
#[derive(Debug)]
pub struct Api(pub Arc<Shared>);

impl Handler for Api {
    fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Reply {
        let call = match decode(method, path, body) {
            Ok(call) => call,
            Err(e) => return Reply::error(e.status(), e.message()),
        };
        match call {
            Call::Enqueue(req) => {
                let answer = self.0.lock().enqueue(req);
                match answer {
                    Ok(s) => {
                        self.0.wake_sampler();
                        Reply::json(StatusCode::CREATED, &s)
                    }
                    Err(e) => error_reply(e),
                }
            }
            Call::Status { id } => {
                let d = self.0.lock();
                match Daemon::parse_id(id).and_then(|id| d.status(id)) {
                    Ok(s) => Reply::json(StatusCode::OK, &s),
                    Err(e) => error_reply(e),
                }
            }
            Call::Cancel { id } => {
                done(Daemon::parse_id(id).and_then(|id| self.0.lock().cancel(id)))
            }
            Call::Started { id, started } => {
                done(Daemon::parse_id(id).and_then(|id| self.0.lock().started(id, started)))
            }
            Call::Finished { id, finished } => {
                done(Daemon::parse_id(id).and_then(|id| self.0.lock().finished(id, finished)))
            }
            Call::Profiles => Reply::json(StatusCode::OK, &self.0.lock().profile_summaries()),
            Call::Profile { name } => match self.0.lock().profile(name) {
                Ok(p) => Reply::json(StatusCode::OK, p),
                Err(e) => error_reply(e),
            },
            Call::PutProfile { name, profile } => done(self.0.lock().put_profile(name, profile)),
            Call::DaemonStatus => Reply::json(StatusCode::OK, &self.0.lock().daemon_status()),
        }
    }
}

/// Metrics and health, for the TCP listener.
#[derive(Debug)]
pub struct Ops(pub Arc<Shared>);

impl Handler for Ops {
    fn handle(&self, method: &Method, path: &str, _body: &[u8]) -> Reply {
        if method != Method::GET && method != Method::HEAD {
            return Reply::error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        }
        match path {
            "/metrics" => {
                let d = self.0.lock();
                let mut out = String::new();
                match prometheus_client::encoding::text::encode(&mut out, &d.metrics().registry) {
                    Ok(()) => Reply::text(
                        StatusCode::OK,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        out,
                    ),
                    Err(_) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed"),
                }
            }
            "/healthz" => Reply::text(StatusCode::OK, "text/plain", "ok\n"),
            "/readyz" if self.0.ready.load(Ordering::Acquire) => {
                Reply::text(StatusCode::OK, "text/plain", "ready\n")
            }
            "/readyz" => Reply::text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n"),
            _ => Reply::error(StatusCode::NOT_FOUND, "try /metrics, /healthz or /readyz"),
        }
    }
}
