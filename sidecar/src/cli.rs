//! The command line: `serve` (the daemon), `run` (the client that launches a command under
//! admission control), `profiles` (inspect, export and seed learned profiles) and `plan` (MIG
//! layout or MPS for a mix of jobs). Settings can also come from the `HEADROOM_*` variables
//! shown in `--help`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default API socket.
pub const DEFAULT_SOCKET: &str = "/run/headroom/sidecar.sock";

/// Admission control for processes sharing one GPU: starts each only when its learned
/// memory-over-time profile fits beside everything already running, and launches it with an
/// MPS memory limit.
#[derive(Debug, Parser)]
#[command(name = "headroom-sidecar", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission daemon.
    Serve(Box<ServeArgs>),
    /// Ask for admission, wait, then run CMD (as argv, never through a shell).
    Run(RunArgs),
    /// Learned memory profiles.
    Profiles(ProfilesArgs),
    /// Plan a mix of jobs on a GPU: MIG layouts, MPS, MPS inside MIG, ranked.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct SocketArg {
    /// The daemon's API socket.
    #[arg(long, env = "HEADROOM_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Permissions of the API socket, octal.
    #[arg(long, env = "HEADROOM_SOCKET_MODE", default_value = "660")]
    pub socket_mode: String,
    /// Group that owns the API socket (name or numeric id), so its members may use `run`
    /// (with the default mode 660). Default: the daemon's own group.
    #[arg(long, env = "HEADROOM_SOCKET_GROUP")]
    pub socket_group: Option<String>,
    /// Directory of the state database (created 0700; must not be a symlink or world-writable).
    #[arg(long, env = "HEADROOM_STATE_DIR", default_value = "/var/lib/headroom")]
    pub state_dir: PathBuf,
    /// TCP address of /metrics, /healthz and /readyz (never the admission API).
    #[arg(long, env = "HEADROOM_METRICS_LISTEN", default_value = "0.0.0.0:9402")]
    pub metrics_listen: String,
    /// How often to sample GPU memory.
    #[arg(long, env = "HEADROOM_INTERVAL", default_value = "1s")]
    pub interval: String,
    /// Headroom on top of a learned peak for the MPS memory limit (0.10 = 10%).
    #[arg(long, env = "HEADROOM_MARGIN", default_value = "0.10")]
    pub margin: String,
    /// Memory per device never handed out (e.g. 1GiB).
    #[arg(long, env = "HEADROOM_RESERVE", default_value = "0")]
    pub reserve: String,
    /// Devices to manage: GPU indices or GPU/MIG UUIDs, comma separated (default: all).
    #[arg(long, env = "HEADROOM_GPUS")]
    pub gpus: Option<String>,
    /// Path of the NVML library.
    #[arg(long, env = "HEADROOM_NVML_LIB")]
    pub nvml_lib: Option<PathBuf>,
    /// Run against Headroom's fake GPU driven by this scenario file.
    #[arg(long, env = "HEADROOM_SIMULATE", value_name = "SCENARIO")]
    pub simulate: Option<PathBuf>,
    /// Passed to admitted processes as CUDA_MPS_PIPE_DIRECTORY; while no MPS control daemon
    /// answers on its `control` socket, admission pauses (queue reason `mps_unavailable`).
    #[arg(long, env = "HEADROOM_MPS_PIPE_DIRECTORY")]
    pub mps_pipe_directory: Option<PathBuf>,
    /// Start one MPS control daemon per managed GPU / MIG instance, each with private pipe
    /// and log directories under --mps-root; admitted processes get their device's pipe
    /// directory. A daemon that stops answering is started again; on exit each is told to
    /// quit unless admitted processes still use it.
    #[arg(
        long,
        env = "HEADROOM_MANAGE_MPS",
        conflicts_with = "mps_pipe_directory"
    )]
    pub manage_mps: bool,
    /// Where --manage-mps keeps each daemon's `pipe` and `log` directories (ROOT/<uuid>/).
    #[arg(long, env = "HEADROOM_MPS_ROOT", default_value = "/run/headroom/mps")]
    pub mps_root: PathBuf,
    /// The MPS control program --manage-mps runs (as argv, with `-d` to start a daemon and
    /// `quit` on stdin to stop one).
    #[arg(
        long,
        env = "HEADROOM_MPS_CONTROL",
        default_value = "nvidia-cuda-mps-control"
    )]
    pub mps_control: PathBuf,
    /// Passed to admitted processes as CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (1-100).
    #[arg(long, env = "HEADROOM_ACTIVE_THREAD_PERCENTAGE")]
    pub active_thread_percentage: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "HEADROOM_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    /// Workload name (profiles are learned per workload); default: derived from the command.
    #[arg(long)]
    pub workload: Option<String>,
    /// Declared peak memory, e.g. 33GiB (used until the workload's profile is learned).
    #[arg(long, allow_hyphen_values = true)]
    pub peak: Option<String>,
    /// Run only on this device (GPU index, GPU UUID or MIG UUID).
    #[arg(long)]
    pub device: Option<String>,
    /// Give up if still queued after this long (e.g. 10m); exit status 75.
    #[arg(long, allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1.., value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(flatten)]
    pub socket: SocketArg,
    #[command(subcommand)]
    pub action: ProfilesAction,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesAction {
    /// One line per learned workload.
    List,
    /// Draw a workload's memory-over-time envelope with its peak, steady level and duration.
    Show { name: String },
    /// Write every profile as TOML (to stdout, or --output FILE atomically).
    Export {
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Seed profiles from a TOML file written by `export` (or by hand).
    Import { file: PathBuf },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The GPU: a model (h100-80gb, "H100 80GB", h200-141gb, b200-180gb, a100-40gb,
    /// a100-80gb) to use its built-in MIG table, or a GPU index to read the table from NVML.
    #[arg(long, value_name = "MODEL|INDEX")]
    pub gpu: String,
    /// The jobs: NAME=COUNT[@PEAK],... e.g. ti2v-5b=3,s2v-14b=1; @PEAK (e.g. 40GiB) declares
    /// a workload that has no learned profile.
    #[arg(long, value_name = "MIX")]
    pub mix: Option<String>,
    /// Learned profiles: a TOML file as `headroom-sidecar profiles export` writes it (- for
    /// stdin). Without it the built-in seeds (ti2v-5b, s2v-14b) and inline peaks are used.
    #[arg(long, value_name = "PATH")]
    pub profiles: Option<PathBuf>,
    /// Room kept on top of each job's peak: a size (1GiB) or a share of the peak (10%).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub margin: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Options shown in the table (0: all).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub top: usize,
    /// With --gpu INDEX: print NVML's MIG profile table and placements as JSON.
    #[arg(long)]
    pub dump_table: bool,
    /// With --gpu INDEX: compare NVML's MIG table with the built-in one for the GPU's model
    /// (exit 1 and the differences if they disagree).
    #[arg(long)]
    pub check_table: bool,
    /// With --gpu INDEX: the built-in table to compare with or take SM counts from (default:
    /// the one whose name matches the GPU's).
    #[arg(long, value_name = "MODEL")]
    pub table: Option<String>,
    /// Path of the NVML library (--gpu INDEX).
    #[arg(long, env = "HEADROOM_NVML_LIB")]
    pub nvml_lib: Option<PathBuf>,
    /// Read the GPU from Headroom's fake NVML driven by this scenario file (--gpu INDEX).
    #[arg(long, env = "HEADROOM_SIMULATE", value_name = "SCENARIO")]
    pub simulate: Option<PathBuf>,
}
