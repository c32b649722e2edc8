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

use crate::render;
use crate::shared::Shared;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
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
    pub registry: Registry,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn handle(app: &App, req: &Request<Incoming>) -> Response<Full<Bytes>> {
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
                match render::render(&app.registry) {
                    Ok(body) => {
                        let mut r = Response::new(Full::new(Bytes::from(body)));
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
        *resp.body_mut() = Full::new(Bytes::new());
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
