//! `headroom-exporter`: wires configuration, the NVML backend, the sampler and Xid listener
//! threads, the kubelet refresh task (pod attribution) and the HTTP server, and shuts them
//! down in order on SIGTERM/SIGINT.
//!
//! Exit codes: 0 after a clean shutdown; 2 for bad flags or environment; 3 when NVML cannot
//! be loaded or initialised, or DCGM with `--backend dcgm`; 4 when the listen address cannot be bound; 1 otherwise.
#![forbid(unsafe_code)]

mod config;
mod published;
mod render;
mod sampler;
mod server;
mod shared;

use clap::Parser;
use config::{Args, Backend, Config};
use headroom_core::collect::{Kind, XidCounts, XidListener};
use headroom_core::dcgm::DcgmBackend;
use headroom_core::log;
use headroom_core::procfs::ProcFs;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn hostname(cfg: &Config) -> Option<String> {
    cfg.node_name.clone().or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    })
}

/// `off`, or the TLS versions offered and the client certificate policy.
fn web_tls(web: &headroom_webconfig::WebConfig) -> String {
    web.tls.as_ref().map_or_else(
        || "off".to_string(),
        |t| format!("{} {}", t.versions().join(","), t.client_auth()),
    )
}

/// How long the exit waits for the sampler and the Xid listener once the server has drained.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error("cannot install signal handlers; stop with SIGKILL", &[]);
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => log::info("SIGTERM received, draining", &[]),
        _ = int.recv() => log::info("SIGINT received, draining", &[]),
    }
}

/// Resolves `--backend` for the engine-activity collector: the DCGM backend to use, if any,
/// with one log line saying which backend serves activity and why. `Err` only for
/// `--backend dcgm` when DCGM cannot be used.
fn activity_backend(cfg: &Config) -> Result<Option<DcgmBackend>, String> {
    let say = |backend: &str, why: &str| {
        log::info(
            "engine activity backend",
            &[("backend", &backend), ("reason", &why)],
        );
    };
    if !cfg.collectors.contains(&Kind::Gpm) {
        say("none", "the gpm collector is off");
        return Ok(None);
    }
    let open = || DcgmBackend::open(cfg.dcgm_lib.as_deref(), cfg.dcgm_address.as_deref());
    let described = |d: &DcgmBackend| {
        format!(
            "DCGM library {} loaded, {} host engine",
            d.library().display(),
            d.engine()
        )
    };
    match cfg.backend {
        Backend::Nvml => {
            say("nvml", "--backend nvml");
            Ok(None)
        }
        Backend::Dcgm => match open() {
            Ok(d) => {
                say("dcgm", &format!("--backend dcgm; {}", described(&d)));
                Ok(Some(d))
            }
            Err(e) => Err(format!("--backend dcgm: {e}")),
        },
        Backend::Auto if cfg.simulate.is_some() && cfg.dcgm_lib.is_none() => {
            say(
                "nvml",
                "--backend auto with --simulate and no --dcgm-lib: the fake GPU has no host DCGM",
            );
            Ok(None)
        }
        Backend::Auto => match open() {
            Ok(d) => {
                say("dcgm", &format!("--backend auto; {}", described(&d)));
                Ok(Some(d))
            }
            Err(e) => {
                say("nvml", &format!("--backend auto; DCGM not usable: {e}"));
                Ok(None)
            }
        },
    }
}

fn main() -> ExitCode {
    let cfg = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("headroom-exporter: {e}");
            }
            return ExitCode::from(2);
        }
    };
    log::init(cfg.log_format);

    let backend =
        match headroom_core::simulate::open(cfg.simulate.as_deref(), cfg.nvml_lib.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                log::error(&e.to_string(), &[]);
                return ExitCode::from(3);
            }
        };

    let dcgm_backend = match activity_backend(&cfg) {
        Ok(d) => d,
        Err(e) => {
            log::error(&e, &[]);
            return ExitCode::from(3);
        }
    };
    let mut cfg = cfg;
    if dcgm_backend.is_some() {
        for k in &mut cfg.collectors {
            if *k == Kind::Gpm {
                *k = Kind::Dcgm;
            }
        }
        cfg.collectors.sort();
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
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(cfg.listen)) {
        Ok(l) => l,
        Err(e) => {
            log::error("cannot listen", &[("address", &cfg.listen), ("error", &e)]);
            return ExitCode::from(4);
        }
    };

    let shared = Arc::new(shared::Shared::new(cfg.interval));
    let dcgm = cfg.compat_dcgm.then(|| hostname(&cfg));
    let app = Arc::new(server::App {
        shared: shared.clone(),
        renderer: render::Renderer::new(dcgm),
        web: cfg.web.clone(),
    });
    let xid_counts = XidCounts::default();
    let stop_events = AtomicBool::new(false);
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let collectors: Vec<String> = cfg.collectors.iter().map(|k| k.to_string()).collect();
    // Pod attribution: a background task on the server's runtime keeps the kubelet's
    // assignments fresh; the sampler reads the latest, nothing waits for the kubelet.
    let kubelet = cfg
        .kubelet
        .clone()
        .map(|s| Arc::new(headroom_kubelet::Cache::new(s)));
    if let Some(cache) = &kubelet {
        runtime.spawn(headroom_kubelet::refresh(
            cache.clone(),
            std::future::pending(),
        ));
    }
    let kubelet_socket = cfg
        .kubelet
        .as_ref()
        .map_or_else(|| "off".to_string(), |k| k.socket.display().to_string());
    log::info(
        "headroom-exporter listening",
        &[
            (
                "address",
                &format!(
                    "{}://{}/metrics",
                    cfg.web.scheme(),
                    listener.local_addr().unwrap_or(cfg.listen)
                ),
            ),
            ("tls", &web_tls(&cfg.web)),
            (
                "basic_auth_users",
                &cfg.web.auth.as_ref().map_or(0, |a| a.len()),
            ),
            ("nvml", &backend.library().display()),
            ("interval", &format!("{:?}", cfg.interval)),
            ("collectors", &collectors.join(",")),
            ("kubelet", &kubelet_socket),
        ],
    );

    let code = std::thread::scope(|scope| {
        let backend = &backend;
        let xid_enabled = cfg.collectors.contains(&Kind::Xid);
        if xid_enabled {
            let (counts, stop) = (&xid_counts, &stop_events);
            let spawned = std::thread::Builder::new()
                .name("xid-events".into())
                .spawn_scoped(scope, move || {
                    XidListener {
                        backend,
                        counts,
                        stop,
                    }
                    .run()
                });
            if let Err(e) = spawned {
                log::error("cannot start the Xid listener thread", &[("error", &e)]);
            }
        }
        let sampler = sampler::Sampler {
            backend,
            shared: &shared,
            interval: cfg.interval,
            collectors: cfg.collectors.clone(),
            procfs: ProcFs::new(&cfg.procfs),
            xid: xid_enabled.then_some(&xid_counts),
            kubelet: kubelet.as_deref(),
            dcgm: dcgm_backend,
        };
        let spawned = std::thread::Builder::new()
            .name("sampler".into())
            .spawn_scoped(scope, move || sampler.run(stop_rx));
        if let Err(e) = spawned {
            log::error("cannot start the sampler thread", &[("error", &e)]);
            stop_events.store(true, Ordering::Relaxed);
            return ExitCode::from(1);
        }
        runtime.block_on(server::serve(listener, app, shutdown_signal()));
        let _ = stop_tx.send(());
        stop_events.store(true, Ordering::Relaxed);
        // The sampler and the listener stop between NVML calls; a call that hangs (a wedged
        // driver) must not hold the exit: past the grace, exit without waiting for it.
        let _ = std::thread::Builder::new()
            .name("exit-grace".into())
            .spawn(|| {
                std::thread::sleep(EXIT_GRACE);
                log::warn(
                    "an NVML call is still running; exiting without waiting for it",
                    &[("waited", &format!("{EXIT_GRACE:?}"))],
                );
                std::process::exit(0);
            });
        ExitCode::SUCCESS
    });
    log::info("stopped", &[]);
    code
}
