//! `fake-gpu-job`: plays one inference process on Headroom's fake GPU (see
//! `headroom_fake::job` and `docs/scenarios.md`). Exit status: 0 finished, 1 CUDA out of
//! memory, 2 bad input or setup error.
//!
//! SIGTERM/SIGINT keep their default action (the process dies by the signal, which a shell
//! reports as 143/130): std has no signal API and this crate forbids unsafe code. The dead
//! job's registry entry is removed by the next reader, which skips pids that no longer run.
#![forbid(unsafe_code)]

use headroom_core::units::Bytes;
use headroom_fake::job::args::{self, Command};
use headroom_fake::job::{self, JobConfig, JobError, Outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fake-gpu-job: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, JobError> {
    let args = match args::parse_args(std::env::args().skip(1))? {
        Command::Help => {
            println!("{}", args::USAGE);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Run(a) => a,
    };
    let env = args::read_env(|k| std::env::var(k).ok())?;
    let cfg = JobConfig::from_parts(args, env)?;
    let pid = std::process::id();
    println!(
        "fake-gpu-job: pid {pid} started workload {} on {}: {:.1} s alone, peak {}{}",
        cfg.workload.name,
        cfg.describe(),
        cfg.workload.duration_s(),
        Bytes((cfg.workload.peak_bytes() as f64 * cfg.overrun).round() as u64),
        if cfg.overrun != 1.0 {
            format!(" (overrun ×{})", cfg.overrun)
        } else {
            String::new()
        }
    );
    match job::run(&cfg)? {
        Outcome::Finished {
            virtual_s,
            wall,
            peak,
        } => {
            println!(
                "fake-gpu-job: pid {pid} finished workload {} in {virtual_s:.1} s ({:.2} s wall), peak {}",
                cfg.workload.name,
                wall.as_secs_f64(),
                Bytes(peak)
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::OutOfMemory(report) => {
            eprintln!("{}", report.message());
            Ok(ExitCode::from(1))
        }
    }
}
