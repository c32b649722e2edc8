//! Command line and environment: clap reads each flag or its `HEADROOM_*` variable as text,
//! then [`Config::from_args`] validates everything and reports every bad value at once, each
//! naming its flag and variable.

use clap::Parser;
use headroom_core::collect::Kind;
use headroom_core::units::parse_duration;
use headroom_webconfig::WebConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default listen address. Prometheus' port list (9100–9999) is fully allocated; 9401 sits
/// beside dcgm-exporter's 9400 and clear of nvidia_gpu_exporter's 9835, so Headroom can run
/// next to either during a migration.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9401";

/// Prometheus exporter for shared NVIDIA GPUs: per GPU, per MIG instance and per MPS client.
///
/// Serves /metrics (OpenMetrics), /healthz and /readyz. Every flag can also be set through
/// the environment variable shown with it.
#[derive(Debug, Parser)]
#[command(name = "headroom-exporter", version)]
pub struct Args {
    /// Address to listen on for HTTP (metrics and health only).
    #[arg(long, env = "HEADROOM_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// How often to collect from NVML (e.g. 500ms, 1s, 15s; at least 100ms, GPM's spacing).
    #[arg(long, env = "HEADROOM_INTERVAL", default_value = "1s")]
    pub interval: String,

    /// Collectors to run, comma separated, from: device, process, gpm, xid.
    /// `device` (GPU discovery) always runs.
    #[arg(
        long,
        env = "HEADROOM_COLLECTORS",
        default_value = "device,process,gpm,xid"
    )]
    pub collectors: String,

    /// Path of the NVML library (default: libnvidia-ml.so.1 from the loader's search path).
    #[arg(long, env = "HEADROOM_NVML_LIB")]
    pub nvml_lib: Option<PathBuf>,

    /// Run on Headroom's fake GPU driven by this scenario file (no GPU needed); uses the
    /// fake NVML library built next to this binary unless --nvml-lib says otherwise.
    #[arg(long, env = "HEADROOM_SIMULATE", value_name = "SCENARIO")]
    pub simulate: Option<PathBuf>,

    /// Where engine activity (the `gpm` collector's job) comes from: `nvml` (GPM, Hopper and
    /// newer), `dcgm` (DCGM's profiling fields, needs libdcgm; fails at start without it) or
    /// `auto` (DCGM when it loads and starts, NVML otherwise; one log line says which and
    /// why). With --simulate, `auto` means nvml unless --dcgm-lib names a library.
    #[arg(
        long,
        env = "HEADROOM_BACKEND",
        default_value = "auto",
        value_name = "auto|nvml|dcgm"
    )]
    pub backend: String,

    /// Path of the DCGM library (default: libdcgm.so.4, then libdcgm.so.3).
    #[arg(long, env = "HEADROOM_DCGM_LIB")]
    pub dcgm_lib: Option<PathBuf>,

    /// A standalone DCGM host engine (nv-hostengine) to connect to: host:port, or unix:PATH
    /// for its unix socket. Default: an embedded host engine inside the exporter.
    #[arg(
        long,
        env = "HEADROOM_DCGM_ADDRESS",
        value_name = "HOST:PORT|unix:PATH"
    )]
    pub dcgm_address: Option<String>,

    /// Also emit dcgm-exporter metric names and labels (`dcgm`).
    #[arg(long, env = "HEADROOM_COMPAT")]
    pub compat: Option<String>,

    /// Log format: text or json.
    #[arg(long, env = "HEADROOM_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Root of the procfs to read process environments and cgroups from.
    #[arg(long, env = "HEADROOM_PROCFS", default_value = "/proc")]
    pub procfs: PathBuf,

    /// Node name for the `Hostname` label of --compat dcgm (default: the kernel hostname).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// The kubelet's pod-resources socket, for `pod`/`namespace`/`container` labels on GPU
    /// processes, or `none` to turn them off. Default: the kubelet's own socket
    /// (/var/lib/kubelet/pod-resources/kubelet.sock) when its directory exists, else off.
    #[arg(long, env = "HEADROOM_KUBELET_SOCKET", value_name = "PATH|none")]
    pub kubelet_socket: Option<String>,

    /// How often to refresh pod assignments from the kubelet (in the background; at least
    /// 100ms).
    #[arg(long, env = "HEADROOM_KUBELET_REFRESH", default_value = "10s")]
    pub kubelet_refresh: String,

    /// TLS and basic auth for the listener: a web-config file in the Prometheus
    /// exporter-toolkit format (tls_server_config, basic_auth_users with bcrypt hashes,
    /// http_server_config). See docs/security.md.
    #[arg(long, env = "HEADROOM_WEB_CONFIG", value_name = "FILE")]
    pub web_config: Option<PathBuf>,
}

/// Resolves `--kubelet-socket`: an explicit path, `none`/empty for off, or (unset) the
/// kubelet's socket when its directory exists.
fn kubelet_socket(arg: Option<&str>, errors: &mut Vec<String>) -> Option<PathBuf> {
    let default = std::path::Path::new(headroom_kubelet::client::DEFAULT_SOCKET);
    match arg.map(str::trim) {
        None => default
            .parent()
            .is_some_and(std::path::Path::is_dir)
            .then(|| default.to_path_buf()),
        Some("" | "none") => None,
        Some(p) => {
            let path = PathBuf::from(p);
            if path.is_dir() {
                errors.push(format!(
                    "--kubelet-socket/HEADROOM_KUBELET_SOCKET: {p} is a directory; give the socket in it (e.g. {p}/kubelet.sock) or `none`"
                ));
                return None;
            }
            // A socket that does not exist yet is fine: the kubelet may start later.
            Some(path)
        }
    }
}

/// `--backend`: where engine activity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Auto,
    Nvml,
    Dcgm,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub interval: Duration,
    pub collectors: Vec<Kind>,
    pub nvml_lib: Option<PathBuf>,
    pub simulate: Option<PathBuf>,
    pub compat_dcgm: bool,
    pub backend: Backend,
    pub dcgm_lib: Option<PathBuf>,
    pub dcgm_address: Option<String>,
    pub log_format: headroom_core::log::Format,
    pub procfs: PathBuf,
    pub node_name: Option<String>,
    /// Pod attribution through the kubelet, when on.
    pub kubelet: Option<headroom_kubelet::Settings>,
    /// TLS, basic auth and response headers of the listener (`--web-config`; default: plain
    /// HTTP, no auth).
    pub web: Arc<WebConfig>,
}

/// Loads `--web-config` (an empty value means none), one message per problem in the file.
fn web_config(path: Option<&Path>, errors: &mut Vec<String>) -> Option<WebConfig> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Some(WebConfig::default());
    };
    WebConfig::load(path)
        .map_err(|problems| {
            errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("--web-config/HEADROOM_WEB_CONFIG: {}: {p}", path.display())),
            );
        })
        .ok()
}

impl Config {
    /// Validates `args`, collecting one message per bad value.
    pub fn from_args(args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let listen = args
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| errors.push(format!("--listen/HEADROOM_LISTEN: {:?} is not an address like 0.0.0.0:9401 or [::1]:9401", args.listen)))
            .ok();
        let interval = match parse_duration(&args.interval) {
            Ok(d) if d >= headroom_core::collect::GPM_MIN_SPACING => Some(d),
            Ok(_) => {
                errors.push(format!("--interval/HEADROOM_INTERVAL: {:?} is shorter than 100ms (GPM needs samples at least 100ms apart)", args.interval));
                None
            }
            Err(e) => {
                errors.push(format!("--interval/HEADROOM_INTERVAL: {e}"));
                None
            }
        };
        let mut collectors = vec![Kind::Device];
        for name in args
            .collectors
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match name.parse::<Kind>() {
                Err(_) if name == "dcgm" => errors.push(
                    "--collectors/HEADROOM_COLLECTORS: \"dcgm\" is not a collector: engine activity is the `gpm` collector, served by DCGM with --backend dcgm".into(),
                ),
                Ok(k) if !collectors.contains(&k) => collectors.push(k),
                Ok(_) => {}
                Err(e) => errors.push(format!("--collectors/HEADROOM_COLLECTORS: {e}")),
            }
        }
        collectors.sort();
        let compat_dcgm = match args.compat.as_deref() {
            None | Some("") | Some("none") => false,
            Some("dcgm") => true,
            Some(other) => {
                errors.push(format!(
                    "--compat/HEADROOM_COMPAT: unknown mode {other:?} (known: dcgm)"
                ));
                false
            }
        };
        let backend = match args.backend.trim() {
            "auto" | "" => Backend::Auto,
            "nvml" => Backend::Nvml,
            "dcgm" => Backend::Dcgm,
            other => {
                errors.push(format!(
                    "--backend/HEADROOM_BACKEND: unknown backend {other:?} (auto, nvml or dcgm)"
                ));
                Backend::Auto
            }
        };
        let dcgm_address = match args.dcgm_address.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => {
                if backend == Backend::Nvml {
                    errors.push(
                        "--dcgm-address/HEADROOM_DCGM_ADDRESS: set, but --backend is nvml".into(),
                    );
                }
                match a.strip_prefix("unix:") {
                    Some(p) if !p.starts_with('/') => errors.push(format!(
                        "--dcgm-address/HEADROOM_DCGM_ADDRESS: {a:?}: a unix socket needs an absolute path (unix:/run/...)"
                    )),
                    Some(_) => {}
                    None if a.contains(char::is_whitespace) || a.contains('/') => {
                        errors.push(format!(
                            "--dcgm-address/HEADROOM_DCGM_ADDRESS: {a:?} is neither host[:port] nor unix:PATH"
                        ))
                    }
                    None => {}
                }
                Some(a.to_string())
            }
        };
        if args.dcgm_lib.is_some() && backend == Backend::Nvml {
            errors.push("--dcgm-lib/HEADROOM_DCGM_LIB: set, but --backend is nvml".into());
        }
        let log_format = match args.log_format.as_str() {
            "text" => Some(headroom_core::log::Format::Text),
            "json" => Some(headroom_core::log::Format::Json),
            other => {
                errors.push(format!(
                    "--log-format/HEADROOM_LOG_FORMAT: unknown format {other:?} (text or json)"
                ));
                None
            }
        };
        if let Some(s) = &args.simulate
            && !s.is_file()
        {
            errors.push(format!(
                "--simulate/HEADROOM_SIMULATE: scenario file {} does not exist or is not a file",
                s.display()
            ));
        }
        let kubelet_refresh = match parse_duration(&args.kubelet_refresh) {
            Ok(d) if d >= Duration::from_millis(100) => Some(d),
            Ok(_) => {
                errors.push(format!(
                    "--kubelet-refresh/HEADROOM_KUBELET_REFRESH: {:?} is shorter than 100ms",
                    args.kubelet_refresh
                ));
                None
            }
            Err(e) => {
                errors.push(format!("--kubelet-refresh/HEADROOM_KUBELET_REFRESH: {e}"));
                None
            }
        };
        let kubelet = kubelet_socket(args.kubelet_socket.as_deref(), &mut errors)
            .zip(kubelet_refresh)
            .map(|(socket, refresh)| headroom_kubelet::Settings { socket, refresh });
        let web = web_config(args.web_config.as_deref(), &mut errors);
        match (listen, interval, log_format, web) {
            (Some(listen), Some(interval), Some(log_format), Some(web)) if errors.is_empty() => {
                Ok(Self {
                    listen,
                    interval,
                    collectors,
                    nvml_lib: args.nvml_lib,
                    simulate: args.simulate,
                    compat_dcgm,
                    backend,
                    dcgm_lib: args.dcgm_lib,
                    dcgm_address,
                    log_format,
                    procfs: args.procfs,
                    node_name: args.node_name,
                    kubelet,
                    web: Arc::new(web),
                })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["headroom-exporter"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_args(args(&[])).unwrap();
        assert_eq!(c.listen.port(), 9401);
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.collectors, Kind::ALL.to_vec());
        assert!(!c.compat_dcgm);
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let errs = Config::from_args(args(&[
            "--listen",
            "nowhere",
            "--interval",
            "10ms",
            "--collectors",
            "device,bogus",
            "--compat",
            "nvsmi",
            "--log-format",
            "xml",
            "--simulate",
            "/nonexistent.toml",
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 6, "{errs:#?}");
        for flag in [
            "--listen",
            "--interval",
            "--collectors",
            "--compat",
            "--log-format",
            "--simulate",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(flag)),
                "{flag} missing from {errs:#?}"
            );
        }
    }

    #[test]
    fn kubelet_socket_and_refresh() {
        let c = Config::from_args(args(&[
            "--kubelet-socket",
            "/run/k/kubelet.sock",
            "--kubelet-refresh",
            "2s",
        ]))
        .unwrap();
        assert_eq!(
            c.kubelet,
            Some(headroom_kubelet::Settings {
                socket: "/run/k/kubelet.sock".into(),
                refresh: Duration::from_secs(2),
            })
        );
        let off = Config::from_args(args(&["--kubelet-socket", "none"])).unwrap();
        assert_eq!(off.kubelet, None);
        let dir = std::env::temp_dir();
        let errs = Config::from_args(args(&[
            "--kubelet-socket",
            dir.to_str().unwrap(),
            "--kubelet-refresh",
            "50ms",
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("--kubelet-refresh") && errs[0].contains("100ms"));
        assert!(errs[1].starts_with("--kubelet-socket") && errs[1].contains("directory"));
        let errs = Config::from_args(args(&["--kubelet-refresh", "soon"])).unwrap_err();
        assert!(errs[0].starts_with("--kubelet-refresh"), "{errs:#?}");
    }

    #[test]
    fn backend_flags() {
        let c = Config::from_args(args(&[])).unwrap();
        assert_eq!(c.backend, Backend::Auto);
        let c = Config::from_args(args(&[
            "--backend",
            "dcgm",
            "--dcgm-address",
            "unix:/run/nvidia-dcgm/hostengine.sock",
        ]))
        .unwrap();
        assert_eq!(c.backend, Backend::Dcgm);
        assert_eq!(
            c.dcgm_address.as_deref(),
            Some("unix:/run/nvidia-dcgm/hostengine.sock")
        );
        let errs = Config::from_args(args(&[
            "--backend",
            "nvml",
            "--dcgm-address",
            "10.0.0.1:5555",
            "--dcgm-lib",
            "/opt/libdcgm.so.4",
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("--dcgm-address") && errs[0].contains("nvml"));
        assert!(errs[1].starts_with("--dcgm-lib") && errs[1].contains("nvml"));
        let errs = Config::from_args(args(&[
            "--backend",
            "nccl",
            "--dcgm-address",
            "unix:relative.sock",
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("--backend") && errs[0].contains("auto, nvml or dcgm"));
        assert!(errs[1].starts_with("--dcgm-address") && errs[1].contains("absolute"));
        let errs = Config::from_args(args(&["--collectors", "device,dcgm"])).unwrap_err();
        assert!(errs[0].contains("--backend dcgm"), "{errs:#?}");
    }

    #[test]
    fn collectors_subset_keeps_device() {
        let c = Config::from_args(args(&["--collectors", "gpm"])).unwrap();
        assert_eq!(c.collectors, vec![Kind::Device, Kind::Gpm]);
    }
}
