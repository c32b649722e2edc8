//! `headroom-bench`: the benchmarks of issue 6 (`docs/benchmarks.md`). Each subcommand
//! prints a table (or `--json`) in which every figure names the baseline it was measured
//! against in the same run:
//!
//! - `scrape`: the exporter's scrape path on the fake NVML at several concurrencies;
//! - `collect`: one collection cycle of Headroom's collectors vs the raw NVML floor;
//! - `churn`: RSS and series counts over an hour of process churn compressed into minutes;
//! - `compare`: several exporters side by side at one interval (real hardware);
//! - `admission`: the goodput benchmark, every admission policy on the same jobs in virtual
//!   time (issue 4).
#![forbid(unsafe_code)]

mod admission;
mod chart;
mod churn;
mod collect;
mod compare;
mod exporter;
mod http;
mod procstat;
mod scrape;
mod stats;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "headroom-bench", about = "Benchmarks of headroom-exporter")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Scrape path: scrapes/s, latency, bytes and exporter CPU per concurrency.
    Scrape(scrape::Args),
    /// Collection cycle CPU of Headroom's collectors vs the raw NVML floor.
    Collect(collect::Args),
    /// RSS and series counts under an hour of process churn compressed into minutes.
    Churn(churn::Args),
    /// Several exporters side by side at one interval (real hardware).
    Compare(compare::Args),
    /// Goodput: every admission policy on the same jobs of a scenario, in virtual time.
    Admission(admission::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Scrape(a) => scrape::run(a),
        Cmd::Collect(a) => collect::run(a),
        Cmd::Churn(a) => churn::run(a),
        Cmd::Compare(a) => compare::run(a),
        Cmd::Admission(a) => admission::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("headroom-bench: {e:#}");
            // A scenario that cannot be read is a usage error.
            if e.downcast_ref::<headroom_sim::ScenarioError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
