//! `headroom-sidecar serve`: validates settings (reporting every bad one at once), opens NVML
//! and the store, discovers the devices to manage, re-adopts running processes, then serves the
//! API on the unix socket and metrics on TCP while a sampler thread feeds live memory to the
//! admission core. SIGTERM/SIGINT drain both listeners and exit 0.
//!
//! Exit codes: 2 bad settings; 3 NVML unusable; 4 a listener cannot be bound; 5 the state
//! directory or database is unusable; 6 `--manage-mps` cannot start an MPS control daemon;
//! 1 otherwise.

use crate::cli::ServeArgs;
use crate::daemon::{Daemon, ManagedDevice, Settings};
use crate::routes::{Api, Ops, Shared, Signal};
use crate::store::Store;
use headroom_admission as adm;
use headroom_core::collect::{Collector, DeviceCollector, ProcessCollector};
use headroom_core::log;
use headroom_core::model::Snapshot;
use headroom_core::nvml::NvmlBackend;
use headroom_core::procfs::ProcFs;
use headroom_core::units::{parse_duration, parse_size};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Valid {
    socket_mode: u32,
    socket_group: Option<u32>,
    metrics: SocketAddr,
    interval: Duration,
    config: adm::Config,
    active_threads: Option<u8>,
    log_format: log::Format,
}

/// A group name or numeric id to a gid.
fn resolve_group(g: &str) -> Result<u32, String> {
    let g = g.trim();
    if let Ok(gid) = g.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group named {g:?}")),
        Err(e) => Err(format!("cannot look up group {g:?}: {e}")),
    }
}

fn validate(a: &ServeArgs) -> Result<Valid, Vec<String>> {
    let mut errors = Vec::new();
    let socket_mode = u32::from_str_radix(&a.socket_mode, 8)
        .ok()
        .filter(|m| *m <= 0o777 && m & 0o002 == 0)
        .ok_or_else(|| errors.push(format!("--socket-mode/HEADROOM_SOCKET_MODE: {:?} is not an octal mode without world write (e.g. 660)", a.socket_mode)))
        .ok();
    let socket_group = match a.socket_group.as_deref().map(resolve_group) {
        None => Some(None),
        Some(Ok(gid)) => Some(Some(gid)),
        Some(Err(e)) => {
            errors.push(format!("--socket-group/HEADROOM_SOCKET_GROUP: {e}"));
            None
        }
    };
    let metrics = a.metrics_listen.parse::<SocketAddr>().map_err(|_| errors.push(format!("--metrics-listen/HEADROOM_METRICS_LISTEN: {:?} is not an address like 0.0.0.0:9402", a.metrics_listen))).ok();
    let interval = parse_duration(&a.interval)
        .ok()
        .filter(|d| *d >= Duration::from_millis(100))
        .ok_or_else(|| {
            errors.push(format!(
                "--interval/HEADROOM_INTERVAL: {:?} is not a duration of at least 100ms",
                a.interval
            ))
        })
        .ok();
    let margin = a
        .margin
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && (0.0..=10.0).contains(m))
        .ok_or_else(|| {
            errors.push(format!(
                "--margin/HEADROOM_MARGIN: {:?} is not a fraction between 0 and 10 (0.10 = 10%)",
                a.margin
            ))
        })
        .ok();
    let reserve = parse_size(&a.reserve)
        .map_err(|e| errors.push(format!("--reserve/HEADROOM_RESERVE: {e}")))
        .ok();
    let active_threads = match &a.active_thread_percentage {
        None => Some(None),
        Some(v) => v.parse::<u8>().ok().filter(|p| (1..=100).contains(p)).map(Some).or_else(|| {
            errors.push(format!("--active-thread-percentage/HEADROOM_ACTIVE_THREAD_PERCENTAGE: {v:?} is not 1-100"));
            None
        }),
    };
    let log_format = match a.log_format.as_str() {
        "text" => Some(log::Format::Text),
        "json" => Some(log::Format::Json),
        other => {
            errors.push(format!(
                "--log-format/HEADROOM_LOG_FORMAT: unknown format {other:?} (text or json)"
            ));
            None
        }
    };
    if let Some(s) = &a.simulate
        && !s.is_file()
    {
        errors.push(format!(
            "--simulate/HEADROOM_SIMULATE: scenario file {} does not exist",
            s.display()
        ));
    }
    match (
        socket_mode,
        socket_group,
        metrics,
        interval,
        margin,
        reserve,
        active_threads,
        log_format,
    ) {
        (
            Some(socket_mode),
            Some(socket_group),
            Some(metrics),
            Some(interval),
            Some(margin),
            Some(reserve),
            Some(active_threads),
            Some(log_format),
        ) if errors.is_empty() => Ok(Valid {
            socket_mode,
            socket_group,
            metrics,
            interval,
            config: adm::Config {
                margin,
                reserve,
                horizon_step_s: interval.as_secs_f64(),
                ..adm::Config::default()
            },
            active_threads,
            log_format,
        }),
        _ => Err(errors),
    }
}

/// One NVML round: devices, MIG instances, processes.
/// One NVML round. Failed calls leave values unknown (a device whose memory is unknown is
/// not admissible); they are logged when the set of failures changes, not every round.
fn sample(
    backend: &NvmlBackend,
    device: &mut DeviceCollector,
    process: &mut ProcessCollector,
    last_errors: &mut String,
) -> Snapshot {
    let mut snap = Snapshot::default();
    let (topology, mut out) = device.discover(backend, &mut snap);
    out.errors
        .extend(process.collect(backend, &topology, &mut snap).errors);
    let errors: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    let errors = errors.join("; ");
    if errors != *last_errors {
        if errors.is_empty() {
            log::info("NVML sampling recovered", &[]);
        } else {
            log::warn("NVML sampling failing", &[("errors", &errors)]);
        }
        *last_errors = errors;
    }
    snap
}

/// The devices to manage: every GPU (or, in MIG mode, every MIG instance) the filter names.
fn managed(snap: &Snapshot, filter: Option<&str>) -> Result<Vec<ManagedDevice>, String> {
    let wanted: Option<Vec<&str>> = filter.map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    let mut out = Vec::new();
    for g in &snap.gpus {
        let named = |id: &str| {
            wanted.as_ref().is_none_or(|w| {
                w.iter()
                    .any(|x| *x == id || *x == g.index.to_string() || *x == g.uuid)
            })
        };
        if g.mig_mode == Some(true) {
            for m in &g.mig_instances {
                if named(&m.uuid) {
                    let mem = m
                        .memory
                        .ok_or_else(|| format!("memory of MIG device {} cannot be read", m.uuid))?;
                    out.push(ManagedDevice {
                        id: m.uuid.clone(),
                        gpu_index: g.index,
                        gpu_uuid: g.uuid.clone(),
                        mig_uuid: Some(m.uuid.clone()),
                        capacity: mem.capacity(),
                    });
                }
            }
        } else if named(&g.uuid) {
            let mem = g
                .memory
                .ok_or_else(|| format!("memory of GPU {} cannot be read", g.index))?;
            out.push(ManagedDevice {
                id: g.uuid.clone(),
                gpu_index: g.index,
                gpu_uuid: g.uuid.clone(),
                mig_uuid: None,
                capacity: mem.capacity(),
            });
        }
    }
    if let Some(w) = &wanted {
        for name in w {
            if !out
                .iter()
                .any(|d| d.id == *name || d.gpu_uuid == *name || d.gpu_index.to_string() == *name)
            {
                return Err(format!(
                    "--gpus names {name:?}, which is not a GPU index, GPU UUID or MIG UUID on this machine"
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("no GPU or MIG instance to manage".into());
    }
    Ok(out)
}

async fn shutdown_signal(tx: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    if let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        tokio::select! {
            _ = term.recv() => log::info("SIGTERM received, draining", &[]),
            _ = int.recv() => log::info("SIGINT received, draining", &[]),
        }
    } else {
        log::error("cannot install signal handlers", &[]);
        std::future::pending::<()>().await;
    }
    let _ = tx.send(true);
}

pub fn serve(a: ServeArgs) -> ExitCode {
    let v = match validate(&a) {
        Ok(v) => v,
        Err(errors) => {
            for e in errors {
                eprintln!("headroom-sidecar: {e}");
            }
            return ExitCode::from(2);
        }
    };
    log::init(v.log_format);
    let backend = match headroom_core::simulate::open(a.simulate.as_deref(), a.nvml_lib.as_deref())
    {
        Ok(b) => b,
        Err(e) => {
            log::error(&e.to_string(), &[]);
            return ExitCode::from(3);
        }
    };
    let procfs = ProcFs::default();
    let mut device_collector = DeviceCollector::default();
    let mut process_collector = ProcessCollector::new(procfs.clone());
    let mut last_errors = String::new();
    let first = sample(
        &backend,
        &mut device_collector,
        &mut process_collector,
        &mut last_errors,
    );
    let devices = match managed(&first, a.gpus.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            log::error(&e, &[]);
            return ExitCode::from(3);
        }
    };
    let store = match Store::open(&a.state_dir) {
        Ok(s) if !s.integrity_ok().unwrap_or(false) => {
            log::error(
                "state database failed its integrity check; refusing to start",
                &[("state", &a.state_dir.display())],
            );
            return ExitCode::from(5);
        }
        Ok(s) => s,
        Err(e) => {
            log::error(&e.to_string(), &[]);
            return ExitCode::from(5);
        }
    };
    let mps_manager = if a.manage_mps {
        let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
        match crate::mps::Manager::start(&a.mps_control, &a.mps_root, &ids) {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => {
                log::error(&e.to_string(), &[]);
                return ExitCode::from(6);
            }
        }
    } else {
        None
    };
    let settings = Settings {
        config: v.config,
        mps_pipe_directory: a.mps_pipe_directory.clone(),
        mps_manager: mps_manager.clone(),
        active_thread_percentage: v.active_threads,
        procfs,
        batch_window_s: v.interval.as_secs_f64() * 1.5,
    };
    let daemon = match Daemon::new(store, devices.clone(), settings) {
        Ok(d) => d,
        Err(e) => {
            log::error(&e.to_string(), &[]);
            return ExitCode::from(5);
        }
    };
    let (sampler_tx, sampler_rx) = std::sync::mpsc::sync_channel::<Signal>(1);
    let shared = Arc::new(Shared {
        daemon: std::sync::Mutex::new(daemon),
        ready: false.into(),
        sampler: sampler_tx,
    });
    if let Err(e) = shared.lock().observe(&first) {
        log::warn("first observation failed", &[("error", &format!("{e:?}"))]);
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error("cannot start the async runtime", &[("error", &e)]);
            return ExitCode::from(1);
        }
    };
    let (api_listener, ops_listener) = match runtime.block_on(async {
        let api = crate::http::bind_unix(&a.socket.socket, v.socket_mode, v.socket_group)
            .map_err(|e| e.to_string())?;
        let ops = tokio::net::TcpListener::bind(v.metrics)
            .await
            .map_err(|e| format!("metrics listener {}: {e}", v.metrics))?;
        Ok::<_, String>((api, ops))
    }) {
        Ok(l) => l,
        Err(e) => {
            log::error(&e, &[]);
            return ExitCode::from(4);
        }
    };
    let ops_addr = ops_listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let names: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    log::info(
        "headroom-sidecar serving",
        &[
            ("socket", &a.socket.socket.display()),
            ("metrics", &format!("http://{ops_addr}/metrics")),
            ("devices", &names.join(",")),
            ("state", &a.state_dir.display()),
        ],
    );
    shared.ready.store(true, Ordering::Release);

    let interval = v.interval;
    let code = std::thread::scope(|scope| {
        let sampler_shared = shared.clone();
        let backend = &backend;
        let spawned = std::thread::Builder::new()
            .name("sampler".into())
            .spawn_scoped(scope, move || {
                let mut next_sample = std::time::Instant::now() + interval;
                loop {
                    // Sleep until the next sampling round, or sooner when a decision is due.
                    let until_sample =
                        next_sample.saturating_duration_since(std::time::Instant::now());
                    let wake = sampler_shared.lock().wake_in().map(Duration::from_secs_f64);
                    let timeout = wake.map_or(until_sample, |w| w.min(until_sample));
                    match sampler_rx.recv_timeout(timeout) {
                        Ok(Signal::Wake) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Ok(Signal::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            return;
                        }
                    }
                    if std::time::Instant::now() < next_sample {
                        if let Err(e) = sampler_shared.lock().tick() {
                            log::warn("decision failed", &[("error", &format!("{e:?}"))]);
                        }
                        continue;
                    }
                    next_sample = std::time::Instant::now() + interval;
                    let snap = sample(
                        backend,
                        &mut device_collector,
                        &mut process_collector,
                        &mut last_errors,
                    );
                    if let Err(e) = sampler_shared.lock().observe(&snap) {
                        log::warn("sampling round failed", &[("error", &format!("{e:?}"))]);
                    }
                }
            });
        if let Err(e) = spawned {
            log::error("cannot start the sampler", &[("error", &e)]);
            return ExitCode::from(1);
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        runtime.block_on(async {
            let api: Arc<dyn crate::http::Handler> = Arc::new(Api(shared.clone()));
            let ops: Arc<dyn crate::http::Handler> = Arc::new(Ops(shared.clone()));
            let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|v| *v).await;
            };
            let api_server = crate::http::serve(
                || async { api_listener.accept().await.map(|(s, _)| s) },
                api,
                stopped(rx.clone()),
            );
            let ops_server = crate::http::serve(
                || async { ops_listener.accept().await.map(|(s, _)| s) },
                ops,
                stopped(rx.clone()),
            );
            tokio::join!(api_server, ops_server, shutdown_signal(tx));
        });
        // Blocks only until the sampler takes a pending wake-up; fails if it has stopped.
        let _ = shared.sampler.send(Signal::Stop);
        ExitCode::SUCCESS
    });
    let _ = std::fs::remove_file(&a.socket.socket);
    if let Some(m) = &mps_manager {
        let daemon = shared.lock();
        m.stop(|device| daemon.busy(device), Duration::from_secs(10));
    }
    log::info("stopped", &[]);
    code
}
