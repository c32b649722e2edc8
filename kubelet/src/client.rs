//! One `v1.PodResourcesLister/List` call to the kubelet over its unix socket: a fresh
//! connection per call (HTTP/2 with prior knowledge, hyper's client), a POST of the empty
//! request, the reply read whole (bounded by [`crate::grpc::MAX_MESSAGE`]) with its trailers,
//! and the whole call bounded by a timeout. A connection per call costs one `connect` on a
//! local socket every refresh and survives kubelet restarts without any reconnect logic.

use crate::grpc::{self, FrameError};
use crate::proto::{self, DecodeError, PodResources};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HeaderMap, TE, USER_AGENT};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The kubelet's default pod-resources socket.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The method's path.
pub const LIST_PATH: &str = "/v1.PodResourcesLister/List";

/// Why a `List` call failed.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP/2: {0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    #[error("reply content-type {0:?} is not gRPC")]
    ContentType(String),
    #[error("reply body: {0}")]
    Body(String),
    #[error(transparent)]
    Grpc(#[from] FrameError),
    #[error("reply message: {0}")]
    Decode(#[from] DecodeError),
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Aborts the connection task when the call ends (or is cancelled by its timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn call(socket: &Path) -> Result<Vec<PodResources>, CallError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| CallError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        // Ends when the connection closes; its error, if any, surfaces through the call.
        let _ = conn.await;
    }));
    let req = Request::post(format!("http://localhost{LIST_PATH}"))
        .header(CONTENT_TYPE, grpc::CONTENT_TYPE)
        .header(TE, "trailers")
        .header(
            USER_AGENT,
            concat!("headroom-kubelet/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(grpc::frame(proto::LIST_REQUEST)))?;
    let resp = send.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    if parts.status != hyper::StatusCode::OK {
        return Err(CallError::HttpStatus(parts.status.as_u16()));
    }
    // A trailers-only reply (an error) carries its status in the headers.
    if let Some(s) = header(&parts.headers, "grpc-status") {
        grpc::status(Some(s), header(&parts.headers, "grpc-message"))?;
    }
    let ct = header(&parts.headers, "content-type").unwrap_or("");
    let is_grpc = ct
        .strip_prefix(grpc::CONTENT_TYPE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']));
    if !is_grpc {
        return Err(CallError::ContentType(ct.to_string()));
    }
    let collected = Limited::new(body, grpc::MAX_MESSAGE + 5)
        .collect()
        .await
        .map_err(|e| CallError::Body(e.to_string()))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = header(&trailers, "grpc-status").or(header(&parts.headers, "grpc-status"));
    let message = header(&trailers, "grpc-message").or(header(&parts.headers, "grpc-message"));
    grpc::status(status, message)?;
    let body = collected.to_bytes();
    Ok(proto::decode_list_response(grpc::unframe(&body)?)?)
}

/// Lists the pods the kubelet knows with their devices, within `timeout`.
pub async fn list(socket: &Path, timeout: Duration) -> Result<Vec<PodResources>, CallError> {
    tokio::time::timeout(timeout, call(socket))
        .await
        .unwrap_or(Err(CallError::Timeout(timeout)))
}
