//! Pod attribution end to end: the real exporter on the fake NVML, a fixture procfs whose
//! cgroups place the scenario's processes in Kubernetes pods, and a fake kubelet serving the
//! pod-resources API v1 as real gRPC over HTTP/2 on a unix socket (`fake_kubelet`).
//!
//! Covered: labels where the device-to-pod join is certain (exclusive GPU, MIG device) and
//! absent where it is not (a GPU shared by two pods, the MPS server outside any pod); a pod
//! deleted from the kubelet loses its labels on the next refresh; a kubelet that is not there
//! at start (exporter ready and healthy, no pod labels, one log line however many retries),
//! comes up later (labels appear) and goes away again (labels go once the list is stale); and
//! the client against the fake directly (reply decoded whole, gRPC error status, timeout,
//! missing socket).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fake_kubelet;

use common::*;
use fake_kubelet::{FakeKubelet, Mode, pod};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const G0: &str = "GPU-0a0a0a0a-1111-4111-8111-000000000000";
const G1: &str = "GPU-1b1b1b1b-2222-4222-8222-000000000001";
const G2: &str = "GPU-2c2c2c2c-3333-4333-8333-000000000002";
const MIG: &str = "MIG-3d3d3d3d-4444-5444-9444-000000000003";

const SCENARIO: &str = r#"
driver_version = "580.95.05"
[clock]
time_scale = 1.0

# G0: one training pod holds it alone; the host's MPS server runs on it too.
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-0a0a0a0a-1111-4111-8111-000000000000"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mps = true
[[gpu.process]]
pid = 4194500
name = "nvidia-cuda-mps-server"
mps = false
memory = "66MiB"
contends = false
[[gpu.process]]
pid = 4194501
name = "python3"
mps = true
memory = "20GiB"

# G1: time-sliced between two pods.
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-1b1b1b1b-2222-4222-8222-000000000001"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mps = false
[[gpu.process]]
pid = 4194502
name = "python3"
mps = false
memory = "10GiB"
[[gpu.process]]
pid = 4194503
name = "python3"
mps = false
memory = "11GiB"

# G2: MIG, one 3g.40gb instance held by one pod.
[[gpu]]
name = "NVIDIA H100 80GB HBM3"
uuid = "GPU-2c2c2c2c-3333-4333-8333-000000000002"
memory_total = "81559MiB"
sm_count = 132
architecture = "hopper"
mps = false
mig_mode = true
mig_profiles = "h100-80gb"
[[gpu.mig]]
profile = "3g.40gb"
uuid = "MIG-3d3d3d3d-4444-5444-9444-000000000003"
gpu_instance_id = 1
compute_instance_id = 0
[[gpu.process]]
pid = 4194504
name = "python3"
mps = false
mig = "MIG-3d3d3d3d-4444-5444-9444-000000000003"
memory = "12GiB"
"#;

const UID_TRAIN: &str = "0a0a0a0a-0000-4000-8000-00000000000a";
const UID_A: &str = "0b0b0b0b-0000-4000-8000-00000000000b";
const UID_B: &str = "0c0c0c0c-0000-4000-8000-00000000000c";
const UID_MIG: &str = "0d0d0d0d-0000-4000-8000-00000000000d";

/// A kubepods cgroup v2 line (systemd driver, containerd) for a container of pod `uid`.
fn pod_cgroup(uid: &str, n: u8) -> String {
    let id: String = std::iter::repeat_n(format!("{n:x}"), 64).collect();
    format!(
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope\n",
        uid.replace('-', "_")
    )
}

/// Scenario, fixture procfs and socket path in a temporary directory.
struct Env {
    dir: PathBuf,
    scenario: PathBuf,
    procfs: PathBuf,
    socket: PathBuf,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hr-kubelet-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let procfs = dir.join("proc");
        let cgroups = [
            (4194500, "0::/system.slice/nvidia-mps.service\n".to_string()),
            (4194501, pod_cgroup(UID_TRAIN, 1)),
            (4194502, pod_cgroup(UID_A, 2)),
            (4194503, pod_cgroup(UID_B, 3)),
            (4194504, pod_cgroup(UID_MIG, 4)),
        ];
        for (pid, cg) in cgroups {
            let d = procfs.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup"), cg).unwrap();
        }
        std::fs::write(
            procfs.join("4194501/environ"),
            b"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=24G\0",
        )
        .unwrap();
        let scenario = dir.join("scenario.toml");
        std::fs::write(&scenario, SCENARIO).unwrap();
        Self {
            socket: dir.join("kubelet.sock"),
            dir,
            scenario,
            procfs,
        }
    }

    fn exporter(&self) -> Exporter {
        start(
            &[
                "--simulate",
                self.scenario.to_str().unwrap(),
                "--nvml-lib",
                fake_nvml().to_str().unwrap(),
                "--procfs",
                self.procfs.to_str().unwrap(),
                "--interval",
                "100ms",
                "--kubelet-socket",
                self.socket.to_str().unwrap(),
                "--kubelet-refresh",
                "200ms",
            ],
            &[],
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster of the tests: G0 exclusive to ml/train-0, G1 time-sliced between
/// serving/infer-a and serving/infer-b, the MIG device held by serving/mig-0, and a pod
/// without devices.
fn cluster() -> Vec<fake_kubelet::Pod> {
    let (r0, r1) = (format!("{G1}::0"), format!("{G1}::1"));
    vec![
        pod("ml", "train-0", &[("worker", &[G0]), ("log-shipper", &[])]),
        pod("serving", "infer-a", &[("model", &[r0.as_str()])]),
        pod("serving", "infer-b", &[("model", &[r1.as_str()])]),
        pod("serving", "mig-0", &[("model", &[MIG])]),
        pod("kube-system", "coredns-1", &[("coredns", &[])]),
    ]
}

type Labels = BTreeMap<String, String>;

/// pid → labels of `headroom_process_memory_used_bytes`.
fn processes(text: &str) -> BTreeMap<u32, Labels> {
    samples(text, "headroom_process_memory_used_bytes")
        .into_iter()
        .map(|(l, _)| {
            let pid = label(&l, "pid").unwrap().parse().unwrap();
            (pid, l.into_iter().collect())
        })
        .collect()
}

fn pod_of(text: &str, pid: u32) -> Option<(String, String, Option<String>)> {
    let p = processes(text);
    let l = p.get(&pid)?;
    Some((
        l.get("namespace")?.clone(),
        l.get("pod")?.clone(),
        l.get("container").cloned(),
    ))
}

fn kubelet_success(text: &str) -> Option<f64> {
    samples(text, "headroom_kubelet_success")
        .first()
        .map(|(_, v)| *v)
}

fn wait_for(e: &Exporter, what: &str, mut ok: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(e.addr, "/metrics");
        if ok(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last scrape:\n{body}\nstderr: {:#?}",
            e.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_lines(e: &Exporter, needle: &str) -> usize {
    e.stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

const UNAVAILABLE: &str = "kubelet pod-resources unavailable";
const AVAILABLE: &str = "kubelet pod-resources available";

#[test]
fn pods_are_named_where_certain_and_vanish_when_deleted() {
    let env = Env::new("named");
    let kubelet = FakeKubelet::start(&env.socket, cluster());
    let e = env.exporter();
    let text = wait_for(&e, "train-0's labels", |t| pod_of(t, 4194501).is_some());

    let procs = processes(&text);
    assert_eq!(procs.len(), 5, "{procs:#?}");
    assert_eq!(
        pod_of(&text, 4194501),
        Some(("ml".into(), "train-0".into(), Some("worker".into())))
    );
    assert_eq!(
        pod_of(&text, 4194504),
        Some(("serving".into(), "mig-0".into(), Some("model".into())))
    );
    let train = &procs[&4194501];
    assert_eq!(train["pod_uid"], UID_TRAIN);
    assert_eq!(train["container_id"], "1".repeat(64));
    assert_eq!(train["gpu_uuid"], G0);
    assert_eq!(procs[&4194504]["mig_uuid"], MIG);
    assert_eq!(procs[&4194504]["gpu_uuid"], G2);
    // Never guessed: the host's MPS server on train-0's GPU, and the two pods sharing G1.
    for pid in [4194500, 4194502, 4194503] {
        let l = &procs[&pid];
        for k in ["pod", "namespace", "container"] {
            assert!(!l.contains_key(k), "pid {pid} has {k}: {l:?}");
        }
    }
    // The cgroup ids stay as the fallback where the pod is not certain.
    assert_eq!(procs[&4194502]["pod_uid"], UID_A);
    assert_eq!(procs[&4194503]["pod_uid"], UID_B);
    assert_eq!(kubelet_success(&text), Some(1.0));
    // The MPS client's limit series carries the same pod labels.
    let limits = samples(&text, "headroom_mps_client_memory_limit_bytes");
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(label(&limits[0].0, "pod"), Some("train-0"));
    assert_eq!(label(&limits[0].0, "container"), Some("worker"));

    // train-0 is deleted: its labels go on the next refresh; mig-0 keeps its own.
    kubelet.set_pods(
        cluster()
            .into_iter()
            .filter(|p| p.name != "train-0")
            .collect(),
    );
    let deleted = Instant::now();
    let text = wait_for(&e, "train-0's labels to go", |t| {
        pod_of(t, 4194501).is_none() && processes(t).contains_key(&4194501)
    });
    assert!(
        deleted.elapsed() < Duration::from_secs(3),
        "labels outlived the pod by {:?}",
        deleted.elapsed()
    );
    assert_eq!(processes(&text)[&4194501]["pod_uid"], UID_TRAIN);
    assert_eq!(
        pod_of(&text, 4194504),
        Some(("serving".into(), "mig-0".into(), Some("model".into())))
    );

    assert!(kubelet.calls() >= 2, "{} calls", kubelet.calls());
    assert_eq!(kubelet.violations(), Vec::<String>::new());
    assert_eq!(log_lines(&e, AVAILABLE), 1);
    assert_eq!(log_lines(&e, UNAVAILABLE), 0);
}

#[test]
fn kubelet_unavailable_then_back_then_gone() {
    let env = Env::new("outage");
    let e = env.exporter();

    // No kubelet: healthy, ready, no pod labels, cgroup ids still there, one log line.
    let text = metrics_after(&e, 3);
    assert_eq!(get(e.addr, "/readyz").0, 200);
    assert_eq!(get(e.addr, "/healthz").0, 200);
    std::thread::sleep(Duration::from_millis(1600)); // retries at +0.2, +0.6, +1.4 s
    let text2 = wait_for(&e, "kubelet_success 0", |t| kubelet_success(t) == Some(0.0));
    for t in [&text, &text2] {
        let procs = processes(t);
        assert_eq!(procs.len(), 5, "{procs:#?}");
        assert!(
            procs.values().all(|l| !l.contains_key("pod")
                && !l.contains_key("namespace")
                && !l.contains_key("container")),
            "{procs:#?}"
        );
        assert_eq!(procs[&4194501]["pod_uid"], UID_TRAIN);
    }
    assert_eq!(get(e.addr, "/readyz").0, 200);
    assert_eq!(
        log_lines(&e, UNAVAILABLE),
        1,
        "{:#?}",
        e.stderr.lock().unwrap()
    );
    assert!(
        e.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(UNAVAILABLE) && l.contains(env.socket.to_str().unwrap())),
        "the log line names the socket"
    );

    // The kubelet comes up: labels appear after the next retry.
    let kubelet = FakeKubelet::start(&env.socket, cluster());
    let text = wait_for(&e, "labels once the kubelet answers", |t| {
        pod_of(t, 4194501).is_some()
    });
    assert_eq!(
        pod_of(&text, 4194501),
        Some(("ml".into(), "train-0".into(), Some("worker".into())))
    );
    let text = wait_for(&e, "kubelet_success 1", |t| kubelet_success(t) == Some(1.0));
    assert!(pod_of(&text, 4194504).is_some());
    assert_eq!(log_lines(&e, AVAILABLE), 1);
    assert_eq!(kubelet.violations(), Vec::<String>::new());

    // It goes away: the last list is served for three refreshes at most, then labels go.
    drop(kubelet);
    let gone = Instant::now();
    let text = wait_for(&e, "labels to go with the kubelet", |t| {
        processes(t).values().all(|l| !l.contains_key("pod"))
    });
    assert!(
        gone.elapsed() < Duration::from_secs(3),
        "stale labels for {:?}",
        gone.elapsed()
    );
    assert!(processes(&text).len() == 5);
    wait_for(&e, "kubelet_success 0 again", |t| {
        kubelet_success(t) == Some(0.0)
    });
    assert_eq!(log_lines(&e, UNAVAILABLE), 2);
    assert_eq!(get(e.addr, "/readyz").0, 200);
}

#[test]
fn attribution_off_leaves_no_trace() {
    let env = Env::new("off");
    let e = start(
        &[
            "--simulate",
            env.scenario.to_str().unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--procfs",
            env.procfs.to_str().unwrap(),
            "--interval",
            "100ms",
            "--kubelet-socket",
            "none",
        ],
        &[],
    );
    let text = metrics_after(&e, 2);
    assert!(!text.contains("headroom_kubelet_success"), "{text}");
    assert!(!text.contains("pod=\""), "{text}");
    assert!(text.contains(&format!("pod_uid=\"{UID_TRAIN}\"")));
    assert_eq!(log_lines(&e, "kubelet pod-resources"), 0);
    assert!(
        e.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("kubelet=\"off\""))
    );
}

#[test]
fn client_against_the_fake_kubelet() {
    use headroom_kubelet::client::{CallError, list};
    use headroom_kubelet::grpc::FrameError;
    let env = Env::new("client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let timeout = Duration::from_millis(500);

    match rt.block_on(list(&env.socket, timeout)) {
        Err(CallError::Connect { path, .. }) => assert_eq!(path, env.socket),
        other => panic!("expected a connect error, got {other:?}"),
    }

    let kubelet = FakeKubelet::start(&env.socket, cluster());
    let pods = rt.block_on(list(&env.socket, timeout)).unwrap();
    assert_eq!(summary(&pods), want());

    // A large reply (many pods) arrives whole over HTTP/2's flow control.
    let many: Vec<_> = (0..3000)
        .map(|i| pod("bulk", &format!("pod-{i:05}"), &[("c", &[G0])]))
        .collect();
    kubelet.set_pods(many);
    let pods = rt.block_on(list(&env.socket, timeout)).unwrap();
    assert_eq!(pods.len(), 3000);
    assert_eq!(pods[2999].name, "pod-02999");

    kubelet.set_mode(Mode::Unimplemented);
    match rt.block_on(list(&env.socket, timeout)) {
        Err(CallError::Grpc(FrameError::Status {
            code,
            name,
            message,
        })) => {
            assert_eq!((code, name), (12, "UNIMPLEMENTED"));
            assert!(message.contains("PodResourcesLister"), "{message}");
        }
        other => panic!("expected UNIMPLEMENTED, got {other:?}"),
    }

    kubelet.set_mode(Mode::Hang);
    let t = Instant::now();
    match rt.block_on(list(&env.socket, timeout)) {
        Err(CallError::Timeout(d)) => assert_eq!(d, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(kubelet.violations(), Vec::<String>::new());
}

/// (namespace, pod, [(container, device ids)]) of each pod.
type Summary = Vec<(String, String, Vec<(String, Vec<String>)>)>;

fn summary(pods: &[headroom_kubelet::proto::PodResources]) -> Summary {
    pods.iter()
        .map(|p| {
            let containers = p
                .containers
                .iter()
                .map(|c| {
                    let ids = c
                        .devices
                        .iter()
                        .flat_map(|d| {
                            assert_eq!(d.resource_name, "nvidia.com/gpu");
                            d.device_ids.clone()
                        })
                        .collect();
                    (c.name.clone(), ids)
                })
                .collect();
            (p.namespace.clone(), p.name.clone(), containers)
        })
        .collect()
}

/// [`summary`] of [`cluster`].
fn want() -> Summary {
    cluster()
        .into_iter()
        .map(|p| {
            let containers = p
                .containers
                .into_iter()
                .map(|c| (c.name, c.devices.into_iter().flat_map(|d| d.1).collect()))
                .collect();
            (p.namespace, p.name, containers)
        })
        .collect()
}

/// `tests/e2e/grpc_kubelet.py` (grpcio + protobuf) serving [`cluster`] as `service` on
/// `socket`; stops when the returned child's stdin is closed (dropped).
fn python_kubelet(socket: &std::path::Path, service: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let script = repo_root().join("tests/e2e/grpc_kubelet.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(socket)
        .arg(service)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh installs it with grpcio and protobuf)");
    let pods: Vec<serde_json::Value> = cluster()
        .into_iter()
        .map(|p| {
            let containers: Vec<serde_json::Value> = p
                .containers
                .into_iter()
                .map(|c| {
                    let ids: Vec<String> = c.devices.into_iter().flat_map(|d| d.1).collect();
                    serde_json::json!({"name": c.name, "resource": "nvidia.com/gpu", "ids": ids})
                })
                .collect();
            serde_json::json!({"namespace": p.namespace, "name": p.name, "containers": containers})
        })
        .collect();
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "{}", serde_json::Value::Array(pods)).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.trim() != "ready" {
        let out = child.wait_with_output().unwrap();
        panic!(
            "grpc_kubelet.py did not start (scripts/test.sh installs grpcio and protobuf): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child
}

#[test]
fn client_against_a_real_grpc_server() {
    use headroom_kubelet::client::{CallError, list};
    use headroom_kubelet::grpc::FrameError;
    let env = Env::new("grpcio");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let timeout = Duration::from_secs(5);

    let mut server = python_kubelet(&env.socket, "v1.PodResourcesLister");
    let got = rt.block_on(list(&env.socket, timeout));
    drop(server.stdin.take());
    let _ = server.wait();
    assert_eq!(summary(&got.unwrap()), want());

    // A kubelet without the v1 service: grpcio's own UNIMPLEMENTED, trailers-only.
    let _ = std::fs::remove_file(&env.socket);
    let mut server = python_kubelet(&env.socket, "v1alpha1.PodResourcesLister");
    let got = rt.block_on(list(&env.socket, timeout));
    drop(server.stdin.take());
    let _ = server.wait();
    match got {
        Err(CallError::Grpc(FrameError::Status { code: 12, .. })) => {}
        other => panic!("expected UNIMPLEMENTED, got {other:?}"),
    }
}
