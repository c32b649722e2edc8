//! A fake kubelet for tests: the pod-resources API v1 (`v1.PodResourcesLister/List`) served
//! as real gRPC (HTTP/2 via hyper's server, 5-byte message prefix, `grpc-status` in the
//! trailers) on a unix socket, from a pod list the test changes while it runs.
//!
//! Its protobuf encoder is written here, independently of the decoder under test. Requests
//! are checked as a gRPC server would (method, path, content-type, `te: trailers`, the framed
//! empty request); a bad one is recorded in `violations` and answered with an error.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One container and the device ids it holds, per resource name.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub devices: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<Container>,
}

/// `nvidia.com/gpu` devices for one container.
pub fn pod(namespace: &str, name: &str, containers: &[(&str, &[&str])]) -> Pod {
    Pod {
        namespace: namespace.into(),
        name: name.into(),
        containers: containers
            .iter()
            .map(|(c, ids)| Container {
                name: (*c).into(),
                devices: if ids.is_empty() {
                    vec![]
                } else {
                    vec![(
                        "nvidia.com/gpu".into(),
                        ids.iter().map(|s| s.to_string()).collect(),
                    )]
                },
            })
            .collect(),
    }
}

/// How the fake answers `List`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The pod list, `grpc-status: 0`.
    Serve,
    /// A trailers-only reply with `grpc-status: 12` (a kubelet without the v1 service).
    Unimplemented,
    /// Accept the call and never answer.
    Hang,
}

#[derive(Debug)]
pub struct State {
    pub pods: Mutex<Vec<Pod>>,
    pub mode: Mutex<Mode>,
    pub calls: AtomicU64,
    pub violations: Mutex<Vec<String>>,
}

/// A running fake kubelet; stops and removes its socket on drop.
pub struct FakeKubelet {
    pub socket: PathBuf,
    pub state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKubelet {
    /// Starts serving `pods` on `socket` (created; an old file there is removed first).
    pub fn start(socket: &Path, pods: Vec<Pod>) -> Self {
        let _ = std::fs::remove_file(socket);
        let state = Arc::new(State {
            pods: Mutex::new(pods),
            mode: Mutex::new(Mode::Serve),
            calls: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (path, st) = (socket.to_path_buf(), state.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(path, st, stop_rx, ready_tx));
        });
        ready_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("fake kubelet did not start");
        Self {
            socket: socket.to_path_buf(),
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn set_pods(&self, pods: Vec<Pod>) {
        *self.state.pods.lock().unwrap() = pods;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.violations.lock().unwrap().clone()
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn serve(
    path: PathBuf,
    state: Arc<State>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    ready.send(()).unwrap();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let st = state.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
    // Dropping the listener closes the socket; open connections are cut.
    conns.abort_all();
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn reply(status: u16, headers: &[(&str, &str)], body: Body) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body).unwrap()
}

fn empty() -> Body {
    Full::new(Bytes::new()).boxed()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let violation = |what: String| state.violations.lock().unwrap().push(what);
    let h = req.headers().clone();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if req.method() != hyper::Method::POST {
        violation(format!("method {}", req.method()));
    }
    if get("content-type") != "application/grpc" {
        violation(format!("content-type {:?}", get("content-type")));
    }
    if get("te") != "trailers" {
        violation(format!("te {:?}", get("te")));
    }
    if req.version() != hyper::Version::HTTP_2 {
        violation(format!("version {:?}", req.version()));
    }
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    // ListPodResourcesRequest {} framed: uncompressed, length 0.
    if body[..] != [0, 0, 0, 0, 0] {
        violation(format!("request body {body:?}"));
    }
    let mode = *state.mode.lock().unwrap();
    if path != "/v1.PodResourcesLister/List" || mode == Mode::Unimplemented {
        if path != "/v1.PodResourcesLister/List" {
            violation(format!("path {path}"));
        }
        return Ok(reply(
            200,
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
                ("grpc-message", "unknown service v1.PodResourcesLister"),
            ],
            empty(),
        ));
    }
    if mode == Mode::Hang {
        std::future::pending::<()>().await;
    }
    let msg = encode_list_response(&state.pods.lock().unwrap());
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(&msg);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = Full::new(Bytes::from(framed))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    Ok(reply(200, &[("content-type", "application/grpc")], body))
}

// --- protobuf encoding (proto3 wire format) ---

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited field (wire type 2).
fn field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    varint(out, (u64::from(number) << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string field; proto3 leaves empty strings out.
fn string(out: &mut Vec<u8>, number: u32, s: &str) {
    if !s.is_empty() {
        field(out, number, s.as_bytes());
    }
}

/// `ListPodResourcesResponse`, with some fields the client must skip: `cpu_ids` (packed
/// int64, field 3 of ContainerResources) and `topology` (field 3 of ContainerDevices).
pub fn encode_list_response(pods: &[Pod]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pods {
        let mut pod = Vec::new();
        string(&mut pod, 1, &p.name);
        string(&mut pod, 2, &p.namespace);
        for c in &p.containers {
            let mut cont = Vec::new();
            string(&mut cont, 1, &c.name);
            for (resource, ids) in &c.devices {
                let mut dev = Vec::new();
                string(&mut dev, 1, resource);
                for id in ids {
                    field(&mut dev, 2, id.as_bytes());
                }
                // TopologyInfo { nodes { ID: 0 } } → nodes is an empty NUMANode message.
                let mut topo = Vec::new();
                field(&mut topo, 1, &[]);
                field(&mut dev, 3, &topo);
                field(&mut cont, 2, &dev);
            }
            let mut cpus = Vec::new();
            for cpu in [0u64, 1, 300] {
                varint(&mut cpus, cpu);
            }
            field(&mut cont, 3, &cpus);
            field(&mut pod, 3, &cont);
        }
        field(&mut out, 1, &pod);
    }
    out
}
