//! `headroom-bench collect`: CPU time of one collection cycle of Headroom's real collectors
//! (`headroom_core::collect`, in this process), against the floor: the same NVML queries
//! made directly through nvml-wrapper in a tight loop, with everything that can be learned
//! once (GPU handles, MIG mode, GPM support, the GPU-instance id of each MIG slot) learned
//! once. The ratio is Headroom's overhead over what the queries themselves cost.
//!
//! Floor, per cycle and GPU: `nvmlDeviceGetMemoryInfo_v2`, `nvmlDeviceGetTemperature`,
//! `nvmlDeviceGetPowerUsage`, `nvmlDeviceGetClockInfo(SM)`; without MIG
//! `nvmlDeviceGetUtilizationRates`, the compute and MPS process lists (count + fetch each)
//! and a GPM sample with `nvmlGpmMetricsGet` against the previous one; with MIG
//! `nvmlDeviceGetMaxMigDeviceCount`, every `nvmlDeviceGetMigDeviceHandleByIndex`, memory and
//! both process lists per MIG device, and a GPM MIG sample per GPU instance.
//!
//! Both sides run interleaved in rounds (so drift and neighbours' load hit both alike); CPU
//! is the sampling thread's own (`CLOCK_THREAD_CPUTIME_ID`), less the cost of reading it.
//! On the fake NVML, `--scenario` is set in `HEADROOM_FAKE_SCENARIO` by re-executing the
//! bench before NVML is loaded (as the exporter's `--simulate` does).

use crate::exporter;
use crate::procstat;
use crate::stats::{Summary, Table, us};
use anyhow::{Context, Result};
use headroom_core::collect::{
    Collector, DeviceCollector, GpmCollector, Kind, ProcessCollector, Topology,
};
use headroom_core::model::Snapshot;
use headroom_core::nvml::NvmlBackend;
use headroom_core::procfs::ProcFs;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::{Device, GpmSample, Nvml};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `collect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run on the fake NVML with this scenario (else the real NVML).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// NVML library (default: the fake beside this binary with --scenario, else
    /// libnvidia-ml.so.1).
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
    /// Measured cycles per side and round.
    #[arg(long, default_value_t = 40)]
    pub cycles: usize,
    /// Rounds (each runs Headroom's cycles, then the floor's).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Pause between cycles (GPM windows on real hardware want ≥ 100ms; CPU is measured
    /// without it).
    #[arg(long, default_value = "0ms")]
    pub interval: String,
    /// Collectors run on Headroom's side (`device` always runs; `xid` has no cycle).
    #[arg(long, value_delimiter = ',', default_value = "device,process,gpm")]
    pub collectors: Vec<Kind>,
    /// procfs root for host attribution.
    #[arg(long, default_value = "/proc")]
    pub procfs: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct Side {
    /// CPU per cycle, timer cost removed.
    pub cpu: Summary,
    /// Wall time per cycle.
    pub wall: Summary,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub library: String,
    pub scenario: Option<String>,
    pub cpus: usize,
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
    pub gpus: usize,
    pub mig_devices: usize,
    pub processes_last_cycle: usize,
    pub collector_errors_last_cycle: usize,
    /// Cost of one CPU-time reading pair, removed from every sample.
    pub timer_overhead_us: f64,
    pub headroom: Side,
    /// Wall time per collector in Headroom's cycle (median, µs).
    pub headroom_wall_by_collector_p50_us: Vec<(String, f64)>,
    pub floor: Side,
    /// Part of Headroom's cycle that is not NVML: the `/proc/PID/stat` read the process
    /// collector makes for every listed pid every cycle (to tell a reused pid), measured
    /// alone for the last cycle's pids (median CPU µs per cycle).
    pub host_stat_reads_p50_us: f64,
    /// Headroom's median CPU per cycle over the floor's.
    pub ratio_p50: f64,
    pub ratio_mean: f64,
}

/// Headroom's collectors as the exporter's sampler runs them.
struct Headroom<'n> {
    backend: &'n NvmlBackend,
    device: DeviceCollector,
    others: Vec<Box<dyn Collector<'n> + 'n>>,
    gpus: usize,
    mig: usize,
    processes: usize,
    errors: usize,
    /// Pids of the last cycle, for the host-lookup diagnostic.
    pids: Vec<u32>,
}

impl<'n> Headroom<'n> {
    fn new(backend: &'n NvmlBackend, kinds: &[Kind], procfs: &PathBuf) -> Self {
        let mut others: Vec<Box<dyn Collector<'n> + 'n>> = Vec::new();
        for k in kinds {
            match k {
                Kind::Process => others.push(Box::new(ProcessCollector::new(ProcFs::new(procfs)))),
                Kind::Gpm => others.push(Box::new(GpmCollector::new())),
                // The collector benchmark measures the NVML path only.
                Kind::Device | Kind::Xid | Kind::Dcgm => {}
            }
        }
        Self {
            backend,
            device: DeviceCollector::default(),
            others,
            gpus: 0,
            mig: 0,
            processes: 0,
            errors: 0,
            pids: Vec::new(),
        }
    }

    /// One cycle; wall time per collector into `walls`.
    fn cycle(&mut self, walls: &mut [Vec<f64>]) {
        let mut snapshot = Snapshot::default();
        let t = Instant::now();
        let (topology, out): (Topology<'n>, _) = self.device.discover(self.backend, &mut snapshot);
        let mut errors = out.errors.len();
        if let Some(w) = walls.get_mut(0) {
            w.push(t.elapsed().as_secs_f64() * 1e6);
        }
        for (i, c) in self.others.iter_mut().enumerate() {
            let t = Instant::now();
            errors += c
                .collect(self.backend, &topology, &mut snapshot)
                .errors
                .len();
            if let Some(w) = walls.get_mut(i + 1) {
                w.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        self.gpus = snapshot.gpus.len();
        self.mig = snapshot.gpus.iter().map(|g| g.mig_instances.len()).sum();
        self.processes = snapshot.gpus.iter().map(|g| g.processes.len()).sum();
        self.errors = errors;
        self.pids = snapshot
            .gpus
            .iter()
            .flat_map(|g| g.processes.iter().map(|p| p.pid))
            .collect();
        std::hint::black_box(&snapshot);
    }

    fn names(&self) -> Vec<String> {
        std::iter::once("device".to_string())
            .chain(self.others.iter().map(|c| c.kind().to_string()))
            .collect()
    }
}

const METRICS: [GpmMetricId; 3] = [
    GpmMetricId::GraphicsUtil,
    GpmMetricId::SmUtil,
    GpmMetricId::AnyTensorUtil,
];

/// One GPU as the floor knows it after set-up.
struct FloorGpu<'n> {
    device: Device<'n>,
    mig: bool,
    gpm: bool,
    /// GPU-instance ids of its MIG devices (deduplicated), learned once.
    gis: Vec<u32>,
}

/// The raw NVML queries, nothing else.
struct Floor<'n> {
    nvml: &'n Nvml,
    gpus: Vec<FloorGpu<'n>>,
    previous: HashMap<(usize, Option<u32>), GpmSample<'n>>,
}

impl<'n> Floor<'n> {
    fn new(backend: &'n NvmlBackend) -> Result<Self> {
        let nvml = backend.nvml();
        let mut gpus = Vec::new();
        for i in 0..nvml.device_count().context("nvmlDeviceGetCount")? {
            let device = nvml
                .device_by_index(i)
                .context("nvmlDeviceGetHandleByIndex")?;
            let mig = device.mig_mode().map(|m| m.current == 1).unwrap_or(false);
            let gpm = device.gpm_support().unwrap_or(false);
            let mut gis = Vec::new();
            if mig {
                for slot in 0..device.mig_device_count().unwrap_or(0) {
                    if let Ok(m) = device.mig_device_by_index(slot)
                        && let Ok(gi) = headroom_core::nvml::raw::gpu_instance_id(nvml, &m)
                    {
                        gis.push(gi);
                    }
                }
                gis.sort_unstable();
                gis.dedup();
            }
            gpus.push(FloorGpu {
                device,
                mig,
                gpm,
                gis,
            });
        }
        Ok(Self {
            nvml,
            gpus,
            previous: HashMap::new(),
        })
    }

    fn gpm(&mut self, key: (usize, Option<u32>), sample: Result<GpmSample<'n>, NvmlError>) {
        if let Ok(now) = sample {
            if let Some(prev) = self.previous.get(&key) {
                let _ = std::hint::black_box(gpm_metrics_get(self.nvml, prev, &now, &METRICS));
            }
            self.previous.insert(key, now);
        }
    }

    fn cycle(&mut self) {
        let mut samples = Vec::new();
        for (i, g) in self.gpus.iter().enumerate() {
            let d = &g.device;
            let _ = std::hint::black_box(d.memory_info());
            let _ = std::hint::black_box(d.temperature(TemperatureSensor::Gpu));
            let _ = std::hint::black_box(d.power_usage());
            let _ = std::hint::black_box(d.clock_info(Clock::SM));
            if g.mig {
                let max = d.mig_device_count().unwrap_or(0);
                for slot in 0..max {
                    let Ok(m) = d.mig_device_by_index(slot) else {
                        continue;
                    };
                    let _ = std::hint::black_box(m.memory_info());
                    let _ = std::hint::black_box(m.running_compute_processes());
                    let _ = std::hint::black_box(m.mps_running_compute_processes());
                }
                if g.gpm {
                    for gi in &g.gis {
                        samples.push(((i, Some(*gi)), d.gpm_mig_sample(*gi)));
                    }
                }
            } else {
                let _ = std::hint::black_box(d.utilization_rates());
                let _ = std::hint::black_box(d.running_compute_processes());
                let _ = std::hint::black_box(d.mps_running_compute_processes());
                if g.gpm {
                    samples.push(((i, None), d.gpm_sample()));
                }
            }
        }
        for (key, s) in samples {
            self.gpm(key, s);
        }
    }
}

/// CPU (µs) and wall (µs) of `f`, timer overhead not yet removed.
fn measure(f: impl FnOnce()) -> Result<(f64, f64)> {
    let c0 = procstat::thread_cpu_ns()?;
    let t0 = Instant::now();
    f();
    let wall = t0.elapsed().as_secs_f64() * 1e6;
    let c1 = procstat::thread_cpu_ns()?;
    Ok((c1.saturating_sub(c0) as f64 / 1e3, wall))
}

pub fn run(args: &Args) -> Result<()> {
    let library = match &args.scenario {
        Some(scenario) => {
            let lib = exporter::fake_lib_path(args.nvml_lib.as_deref());
            // Re-executes this process with HEADROOM_FAKE_SCENARIO set unless it already is.
            Some(headroom_core::simulate::prepare(scenario, Some(&lib))?)
        }
        None => args.nvml_lib.clone(),
    };
    let interval = headroom_core::units::parse_duration(&args.interval)?;
    let backend = NvmlBackend::open(library.as_deref())?;
    let loadavg_start = procstat::loadavg();

    let mut headroom = Headroom::new(&backend, &args.collectors, &args.procfs);
    let mut floor = Floor::new(&backend)?;
    let names = headroom.names();
    let mut discard = vec![Vec::new(); names.len()];
    // Warm-up: GPM baselines (the first Headroom cycle waits 100 ms), identity and host
    // caches, the allocator.
    for _ in 0..3 {
        headroom.cycle(&mut discard);
        floor.cycle();
    }
    let mut timer = Vec::new();
    for _ in 0..200 {
        timer.push(measure(|| {})?.0);
    }
    let timer = Summary::of_us(timer).p50_us;

    let (mut h_cpu, mut h_wall, mut f_cpu, mut f_wall) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut walls = vec![Vec::new(); names.len()];
    for _ in 0..args.rounds {
        for _ in 0..args.cycles {
            let (c, w) = measure(|| headroom.cycle(&mut walls))?;
            h_cpu.push((c - timer).max(0.0));
            h_wall.push(w);
            std::thread::sleep(interval);
        }
        for _ in 0..args.cycles {
            let (c, w) = measure(|| floor.cycle())?;
            f_cpu.push((c - timer).max(0.0));
            f_wall.push(w);
            std::thread::sleep(interval);
        }
    }
    // Diagnostic: the host lookups alone.
    let procfs = ProcFs::new(&args.procfs);
    let mut host = Vec::new();
    for _ in 0..args.cycles.max(10) {
        let (c, _) = measure(|| {
            for pid in &headroom.pids {
                std::hint::black_box(procfs.start_time(*pid));
            }
        })?;
        host.push((c - timer).max(0.0));
    }

    let headroom_side = Side {
        cpu: Summary::of_us(h_cpu),
        wall: Summary::of_us(h_wall),
    };
    let floor_side = Side {
        cpu: Summary::of_us(f_cpu),
        wall: Summary::of_us(f_wall),
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let report = Report {
        library: backend.library().display().to_string(),
        scenario: args.scenario.as_ref().map(|s| s.display().to_string()),
        cpus: procstat::cpus(),
        loadavg_start,
        loadavg_end: procstat::loadavg(),
        gpus: headroom.gpus,
        mig_devices: headroom.mig,
        processes_last_cycle: headroom.processes,
        collector_errors_last_cycle: headroom.errors,
        timer_overhead_us: timer,
        host_stat_reads_p50_us: Summary::of_us(host).p50_us,
        ratio_p50: ratio(headroom_side.cpu.p50_us, floor_side.cpu.p50_us),
        ratio_mean: ratio(headroom_side.cpu.mean_us, floor_side.cpu.mean_us),
        headroom_wall_by_collector_p50_us: names
            .into_iter()
            .zip(walls)
            .map(|(n, w)| (n, Summary::of_us(w).p50_us))
            .collect(),
        headroom: headroom_side,
        floor: floor_side,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn table(r: &Report) -> String {
    let mut t = Table::new(&[
        "per cycle",
        "CPU p50 µs",
        "CPU mean µs",
        "CPU p99 µs",
        "wall p50 µs",
        "wall p99 µs",
    ]);
    for (name, s) in [
        ("headroom collectors", &r.headroom),
        ("raw NVML floor", &r.floor),
    ] {
        t.row(vec![
            name.to_string(),
            us(s.cpu.p50_us),
            us(s.cpu.mean_us),
            us(s.cpu.p99_us),
            us(s.wall.p50_us),
            us(s.wall.p99_us),
        ]);
    }
    let by: Vec<String> = r
        .headroom_wall_by_collector_p50_us
        .iter()
        .map(|(n, v)| format!("{n} {}", us(*v)))
        .collect();
    format!(
        "collect: {} ({}), {} CPUs, load {} → {}\n\
         {} GPUs, {} MIG devices, {} processes, {} collector errors in the last cycle\n\
         {} cycles per side (interleaved); timer overhead {} µs removed from each sample\n\n{}\n\
         Headroom wall by collector (p50 µs): {}\n\
         of which not NVML: /proc/PID/stat of each listed pid, {} µs CPU per cycle (measured alone)\n\
         ratio Headroom / floor (CPU): p50 {:.2}×, mean {:.2}×  (target on real hardware ≤ 1.3×)\n",
        r.library,
        r.scenario.as_deref().unwrap_or("real NVML"),
        r.cpus,
        r.loadavg_start.map_or("?".into(), |v| format!("{v:.2}")),
        r.loadavg_end.map_or("?".into(), |v| format!("{v:.2}")),
        r.gpus,
        r.mig_devices,
        r.processes_last_cycle,
        r.collector_errors_last_cycle,
        r.headroom.cpu.n,
        us(r.timer_overhead_us),
        t.render(),
        by.join(", "),
        us(r.host_stat_reads_p50_us),
        r.ratio_p50,
        r.ratio_mean,
    )
}
