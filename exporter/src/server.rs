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
//! Bodies are a few shared `Bytes` sent back to back ([`Body`]): a scrape's exposition goes
//! out without being joined or copied, with an exact `Content-Length`.

use crate::render;
use crate::shared::Shared;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long open connections may finish after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Sampler silence after which /healthz fails (at least; ten intervals if longer).
pub const STALL: Duration = Duration::from_secs(120);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
pub struct App {
    pub shared: Arc<Shared>,
    pub renderer: render::Renderer,
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
        .header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let resp = handle(&app, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
