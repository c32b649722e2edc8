//! HTTP plumbing for the daemon: the admission API on a unix socket (created with mode 0660 by
//! default, never replacing anything but a stale socket), and metrics/health on TCP. Every
//! error is JSON (`{"error": "..."}`).
//!
//! Hostile clients are bounded on both listeners: request bodies are capped at
//! [`api::MAX_BODY`](crate::api::MAX_BODY) (413 beyond, without reading the rest); headers
//! must arrive within [`HEADER_TIMEOUT`] and a body within [`BODY_TIMEOUT`] (408), else the
//! connection is closed; the header section may not exceed [`MAX_HEADER_BYTES`] (431);
//! malformed requests get hyper's 400; at most [`MAX_CONNECTIONS`] connections are open per
//! listener (further ones wait in the kernel's accept queue until one closes).

use crate::api::{ApiError, MAX_BODY};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to send its request line and headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its body once the headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per listener; `run` clients hold one for a single short request.
pub const MAX_CONNECTIONS: usize = 256;
/// Largest request line plus headers; also the read buffer's cap per connection.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
const DRAIN: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A reply: status and body bytes with their content type.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(v) => Self {
                status,
                content_type: "application/json",
                body: v.into(),
            },
            Err(e) => Self::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("encoding the answer: {e}"),
            ),
        }
    }

    pub fn error(status: StatusCode, message: &str) -> Self {
        let body = serde_json::to_vec(&ApiError {
            error: message.to_string(),
        })
        .unwrap_or_default();
        Self {
            status,
            content_type: "application/json",
            body: body.into(),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: Bytes::new(),
        }
    }

    pub fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// Something that answers requests (the daemon's API, or its metrics endpoint).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Reply;
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("socket path {0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("socket path {0} is in use by a running daemon")]
    InUse(PathBuf),
    #[error("socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the API socket with `mode`, removing only a stale socket left by a dead daemon.
pub fn bind_unix(
    path: &Path,
    mode: u32,
    group: Option<u32>,
) -> Result<tokio::net::UnixListener, BindError> {
    let io = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket(path.to_path_buf()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    if let Some(gid) = group {
        std::os::unix::fs::lchown(path, None, Some(gid)).map_err(io)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(listener)
}

async fn respond(handler: Arc<dyn Handler>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return closing(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {MAX_BODY} bytes"),
        ));
    }
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect());
    let bytes = match collected.await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return closing(Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {MAX_BODY} bytes"),
            ));
        }
        Ok(Err(e)) => {
            return closing(Reply::error(
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            ));
        }
        Err(_) => {
            return closing(Reply::error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request body not received within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let path = parts.uri.path().to_string();
    // Handlers are short (a lock, at most one SQLite transaction): run them inline.
    let reply = handler.handle(&parts.method, &path, &bytes);
    to_response(reply)
}

/// An error answer after which the connection is closed (the rest of the body is not read).
fn closing(r: Reply) -> Response<Full<Bytes>> {
    let mut resp = to_response(r);
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn to_response(r: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = r.status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    resp
}

/// Accepts connections from `accept` (at most [`MAX_CONNECTIONS`] open at once) until
/// `shutdown`, then drains for up to 5 s.
pub async fn serve<S, F, Fut>(
    mut accept: F,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::io::Result<S>>,
{
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting: beyond the limit, clients queue in the
        // kernel's backlog instead of costing this process memory and descriptors.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            stream = accept() => {
                let Ok(stream) = stream else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(respond(handler, req).await) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
