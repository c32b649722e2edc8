//! The HTTP server (hyper, HTTP/1.1). Routes:
//!
//! - `GET|HEAD /metrics`: OpenMetrics text of the latest snapshot (503 until the first one).
//! - `GET|HEAD /healthz`: 200 while the sampler shows life; 503 if it has been silent for
//!   longer than [`STALL`] or ten intervals, whichever is longer.
//! - `GET|HEAD /readyz`: 200 once the first snapshot is published, 503 before.
//! - `GET /`: a short index. Anything else: 404; other methods: 405 with `Allow`.
//!
//! Header reads time out (slow clients cannot hold connections open), and on shutdown the
//! server stops accepting and drains open connections for up to [`DRAIN`].
//!
//! Hostile clients are bounded: a request declaring a body over [`MAX_BODY`] gets 413 and the
//! connection is closed (bodies are never read, so memory does not grow with them); the
//! header section may not exceed [`MAX_HEADER_BYTES`] (431); malformed requests get hyper's
//! 400; at most [`MAX_CONNECTIONS`] connections are open at once (further ones wait in the
//! kernel's accept queue until one closes).
//!
//! With `--web-config` ([`headroom_webconfig`]): connections are TLS when the file sets a
//! certificate (the handshake must finish within [`HANDSHAKE_TIMEOUT`]; plain HTTP sent to
//! the TLS port gets a 400 naming https), and with `basic_auth_users` every path except
//! `/healthz` and `/readyz` needs credentials (401 with `WWW-Authenticate: Basic`
//! otherwise). The probes stay open so that kubelet probes work without a password; they
//! tell only whether the exporter is alive and ready. `http_server_config.headers` are added
//! to every response.
//!
//! Bodies are a few shared `Bytes` sent back to back ([`Body`]): a scrape's exposition goes
//! out without being joined or copied, with an exact `Content-Length`.

use crate::render;
use crate::shared::Shared;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{
    ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// How long open connections may finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Sampler silence after which /healthz fails (at least; ten intervals if longer).
pub const STALL: Duration = Duration::from_secs(120);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at once (a scraper keeps one; Prometheus HA pairs and a few people are
/// far below this).
pub const MAX_CONNECTIONS: usize = 256;
/// Largest request body accepted (none of the routes reads one).
pub const MAX_BODY: u64 = 64 * 1024;
/// Largest request line plus headers; also the read buffer's cap per connection.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
pub struct App {
    pub shared: Arc<Shared>,
    pub renderer: render::Renderer,
    /// TLS, basic auth and extra headers (`--web-config`).
    pub web: Arc<headroom_webconfig::WebConfig>,
}

/// A response body of up to three pieces, sent in order; its length is known up front.
#[derive(Debug, Default)]
pub struct Body {
    parts: [Bytes; 3],
    next: usize,
}

impl Body {
    pub fn new(parts: [Bytes; 3]) -> Self {
        Self { parts, next: 0 }
    }

    fn remaining(&self) -> u64 {
        self.parts
            .iter()
            .skip(self.next)
            .map(|b| b.len() as u64)
            .sum()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::new([b, Bytes::new(), Bytes::new()])
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        while let Some(part) = this.parts.get_mut(this.next) {
            let part = std::mem::take(part);
            this.next += 1;
            if !part.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn handle(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        let mut r = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_BODY} bytes\n"),
        );
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return r;
    }
    let path = req.uri().path();
    let known = matches!(path, "/" | "/metrics" | "/healthz" | "/readyz");
    if !known {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut resp = match path {
        "/metrics" => {
            if !app.shared.is_ready() {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "first collection not finished yet\n",
                )
            } else {
                let latest = app.shared.latest();
                match app.renderer.render(latest.as_ref(), Instant::now()) {
                    Ok(body) => {
                        let mut r = Response::new(Body::new(body));
                        r.headers_mut().insert(
                            CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(OPENMETRICS),
                        );
                        r
                    }
                    Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
                }
            }
        }
        "/healthz" => {
            let limit = STALL.max(app.shared.interval * 10);
            let silent = app.shared.since_heartbeat();
            if app.shared.is_ready() && silent > limit {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("sampler silent for {:.0}s\n", silent.as_secs_f64()),
                )
            } else {
                text(StatusCode::OK, "ok\n")
            }
        }
        "/readyz" => {
            if app.shared.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "first collection not finished yet\n",
                )
            }
        }
        _ => text(
            StatusCode::OK,
            "headroom-exporter\n/metrics  OpenMetrics\n/healthz  liveness\n/readyz   readiness\n",
        ),
    };
    if req.method() == Method::HEAD {
        *resp.body_mut() = Body::default();
    }
    resp
}

/// Serves until `shutdown` completes, then drains.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
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
        // A free slot first: beyond the limit, clients wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    serve_connection(stream, app, builder, watcher).await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Serves one accepted connection, after a TLS handshake when `--web-config` asks for TLS.
async fn serve_connection(
    stream: TcpStream,
    app: Arc<App>,
    builder: hyper::server::conn::http1::Builder,
    watcher: Watcher,
) {
    let service = {
        let app = app.clone();
        service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(respond(&app, req).await) }
        })
    };
    match &app.web.tls {
        None => {
            let _ = watcher
                .watch(builder.serve_connection(TokioIo::new(stream), service))
                .await;
        }
        // A failed handshake (timeout, plain HTTP, bad or missing client certificate) only
        // ends this connection; the client sees the TLS alert or the 400.
        Some(tls) => {
            if let Ok(stream) = tls.accept(stream, HANDSHAKE_TIMEOUT).await {
                let _ = watcher
                    .watch(builder.serve_connection(TokioIo::new(stream), service))
                    .await;
            }
        }
    }
}

/// [`handle`] behind basic auth (when configured), plus the configured response headers.
async fn respond(app: &App, req: Request<Incoming>) -> Response<Body> {
    let open = matches!(req.uri().path(), "/healthz" | "/readyz");
    let mut resp = match &app.web.auth {
        Some(auth) if !open => {
            let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
            if auth.check(header).await {
                handle(app, &req)
            } else {
                let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                if req.method() == Method::HEAD {
                    *r.body_mut() = Body::default();
                }
                r
            }
        }
        _ => handle(app, &req),
    };
    for (name, value) in &app.web.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            resp.headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    resp
}
